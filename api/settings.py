"""Configuration, read from the environment at the edge and passed inward.

Every setting is ``TENDERPROOF_<NAME>`` in the environment (a ``.env`` file in
the working directory is read too); command-line flags override them.
"""

from __future__ import annotations

from pathlib import Path

from limits import parse as parse_rate_limit
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from anchoring.config import DEV_CHAIN, ChainSettings
from anchoring.embedded import CHAIN_ID as EMBEDDED_CHAIN_ID
from anchoring.errors import ChainConfigError

#: The embedded default: a SQLite file in the working directory.
DEFAULT_DATABASE_URL = "sqlite:///tenderproof.db"
#: The development log's name. A real deployment names its own (e.g. "tenders.example.gov/log").
DEV_ORIGIN = "localhost/tenderproof-dev"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TENDERPROOF_", env_file=".env", extra="ignore", frozen=True)

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL: sqlite:///file.db or postgresql://user@host/db",
    )
    origin: str = Field(
        default=DEV_ORIGIN,
        description="The log's name, written into every envelope and checkpoint; fixed for a deployment's lifetime.",
    )
    integrate_batch: int = Field(default=50_000, ge=1, description="Entries integrated per transaction.")
    chains: list[ChainSettings] = Field(
        default=[DEV_CHAIN],
        description="Chains to anchor to, as a JSON list (default: the in-process development chain).",
    )
    anchor_key: SecretStr | None = Field(
        default=None, description="Hex private key of the anchoring account, for chains that name none."
    )
    keystore_password: SecretStr | None = Field(default=None, description="Password of the chains' keystore files.")
    anchor_interval: float = Field(default=600.0, gt=0, description="Seconds between anchors while new entries exist.")
    anchor_threshold: int = Field(
        default=10_000, ge=1, description="Anchor at once when this many entries are not yet anchored."
    )
    anchor_poll: float = Field(default=5.0, gt=0, description="Seconds between two rounds of the anchoring job.")
    lease_ttl: float = Field(
        default=60.0, gt=0, description="Seconds an anchoring process holds a chain without renewing its lease."
    )

    # --- The HTTP server (``tenderproof serve``) ------------------------------------------
    max_body_bytes: int = Field(
        default=1_048_576, ge=1, description="Largest request body accepted; a larger one is refused with 413."
    )
    max_json_depth: int = Field(
        default=32,
        ge=2,
        description="Deepest nesting of arrays and objects accepted in a JSON request body; deeper is refused"
        " with 400 before it is parsed.",
    )
    rate_limit: str | None = Field(
        default="120/minute",
        description="Requests per client IP to the public API, in `limits` notation ('120/minute', '10/second');"
        " empty to switch rate limiting off.",
    )
    rate_limit_storage: str = Field(
        default="memory://",
        description="Where rate-limit counters live: 'memory://' (per process) or a shared store such as"
        " 'redis://host:6379' (see the `limits` library).",
    )
    max_concurrency: int = Field(
        default=64, ge=1, description="Requests served at once per process; more are refused with 503 + Retry-After."
    )
    cors_origins: list[str] = Field(
        default=[], description="Origins allowed to call the API from a browser, as a JSON list ('*' for any)."
    )
    hsts: int = Field(
        default=0,
        ge=0,
        description="Strict-Transport-Security max-age in seconds (0: no header; set it only when served over HTTPS).",
    )
    trusted_proxies: list[str] = Field(
        default=[],
        description="Addresses or networks of reverse proxies whose X-Forwarded-For/-Proto are believed"
        ' (JSON list, e.g. ["10.0.0.0/8"]); empty: the client is the peer address.',
    )
    ready_timeout: float = Field(
        default=2.0, gt=0, description="Seconds /readyz waits for the database and each chain before failing."
    )

    require_signatures: bool = Field(
        default=False,
        description="Refuse tender events that are not signed by a registered officer (EIP-712, SPEC §5).",
    )
    signing_chain_id: int | None = Field(
        default=None,
        ge=1,
        description="chainId of the EIP-712 domain officers sign with (default: the first chain's chain_id;"
        f" {EMBEDDED_CHAIN_ID} for the embedded development chain).",
    )
    ocid_prefix: str = Field(
        default="ocds-tp0dev",
        pattern=r"^ocds-[a-z0-9]{6}$",
        description="The publisher's OCDS prefix, for tenders created without an ocid (register yours with OCP).",
    )
    bulk_max_events: int = Field(default=1000, ge=1, description="Events accepted in one bulk request.")
    idempotency_ttl: float = Field(
        default=86_400.0, gt=0, description="Seconds a write's Idempotency-Key is remembered."
    )

    # --- The explorer site ---------------------------------------------------------------
    public_rpc_url: str | None = Field(
        default=None,
        description="JSON-RPC endpoint of the first chain that visitors' browsers query to check anchors (rootAt)"
        " (default: the chain's rpc_url; for the embedded chain, the app's own read-only /rpc).",
    )
    block_explorer_url: str | None = Field(
        default=None,
        description="Block explorer of the first chain (e.g. https://sepolia.etherscan.io): the explorer links"
        " <url>/block/<n> and <url>/tx/<hash>.",
    )
    explorer_stats_ttl: float = Field(
        default=30.0,
        ge=0,
        description="Seconds the explorer reuses its ledger-wide figures and charts before recomputing them.",
    )

    @property
    def chain_id_for_signatures(self) -> int:
        """The EIP-712 ``chainId`` of this deployment's officer signatures.

        Raises :class:`ChainConfigError` naming ``TENDERPROOF_SIGNING_CHAIN_ID`` when neither it
        nor the first chain's ``chain_id`` says which (a JSON-RPC chain's id is not guessed);
        :func:`api.app.create_app` asks at once, so a server never starts without it.
        """
        if self.signing_chain_id is not None:
            return self.signing_chain_id
        first = self.chains[0] if self.chains else None
        if first is not None and first.chain_id is not None:
            return first.chain_id
        if first is None or first.embedded:
            return EMBEDDED_CHAIN_ID
        raise ChainConfigError(
            "TENDERPROOF_SIGNING_CHAIN_ID",
            f"must be set when the first chain ({first.name!r}, {first.rpc_url}) names no chain_id:"
            " officers' EIP-712 signatures need the chain id",
        )

    @field_validator("rate_limit")
    @classmethod
    def _rate_limit_parses(cls, value: str | None) -> str | None:
        if value is None or not value.strip() or value.strip().lower() == "off":
            return None
        try:
            parse_rate_limit(value)
        except ValueError as exc:
            raise ValueError(f"must look like '120/minute', got {value!r}") from exc
        return value.strip()

    @field_validator("public_rpc_url", "block_explorer_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not value.startswith(("http://", "https://")) or any(c in value for c in " '\";"):
            raise ValueError(f"must be an http(s):// URL, got {value!r}")
        return value.rstrip("/")

    @field_validator("chains")
    @classmethod
    def _unique_names(cls, value: list[ChainSettings]) -> list[ChainSettings]:
        names = [chain.name for chain in value]
        if len(set(names)) != len(names):
            raise ValueError(f"chain names must be unique, got {names}")
        return value

    @field_validator("origin")
    @classmethod
    def _origin_is_one_line(cls, value: str) -> str:
        if not value or "\n" in value or value != value.strip():
            raise ValueError("must be a non-empty single line without surrounding spaces")
        return value

    @classmethod
    def dev(cls, directory: Path | None = None) -> Settings:
        """The embedded development setup: SQLite in ``directory`` (default: the working directory)."""
        url = DEFAULT_DATABASE_URL if directory is None else f"sqlite:///{directory / 'tenderproof.db'}"
        return cls(database_url=url, origin=DEV_ORIGIN)
