"""Tenderproof's configuration: one module, read by every edge (the command line, the HTTP API,
the explorer, the anchoring service) and by nothing below them.

Every setting is ``TENDERPROOF_<NAME>`` in the environment (a ``.env`` file in the working
directory is read too); command-line flags override them. Settings are built at the edge and
passed inward: nothing is read at import time. The reference of every variable is generated
from these classes into ``docs/operations.md`` (``tools/settings_doc.py``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from limits import parse as parse_rate_limit
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger.core.errors import InvalidArgumentError

__all__ = [
    "DEFAULT_DATABASE_URL",
    "DEV_CHAIN",
    "DEV_ORIGIN",
    "EMBEDDED",
    "EMBEDDED_CHAIN_ID",
    "EMBEDDED_LABEL",
    "ChainConfigError",
    "ChainSettings",
    "ConfigError",
    "KnownChain",
    "Settings",
]

#: ``rpc_url`` of the in-process development chain (eth-tester on py-evm).
EMBEDDED = "embedded"
#: eth-tester's chain id (``eth_chainId`` of every embedded chain).
EMBEDDED_CHAIN_ID = 131277322940537
#: Shown wherever the embedded chain's anchors are shown.
EMBEDDED_LABEL = "embedded development chain (in-process EVM, gone when the process exits)"


class ConfigError(InvalidArgumentError):
    """A setting cannot work. ``field`` names it (``TENDERPROOF_SIGNING_CHAIN_ID``,
    ``chains[sepolia].chain_id``)."""


class ChainConfigError(ConfigError):
    """A chain's configuration cannot work (wrong key, chain id, contract address, account role).

    Raised before anything is sent. ``field`` names the setting, e.g. ``chains[sepolia].chain_id``.
    """


_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


class KnownChain(BaseModel):
    """A chain the explorer names in words, with its block explorer."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=64, description="Its name, e.g. Ethereum Sepolia.")
    explorer: str | None = Field(default=None, pattern=r"^https?://[^\s'\";]+$", description="Its block explorer.")


class ChainSettings(BaseModel):
    """One chain the log is anchored to. Each configured chain anchors independently."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")] = Field(
        description="Short name, used in the database and on the command line (e.g. 'sepolia')."
    )
    rpc_url: str = Field(
        description="JSON-RPC endpoint (http:// or https://), or 'embedded' for the in-process development chain."
    )
    chain_id: int | None = Field(
        default=None, ge=1, description="Expected chain id; nothing is sent if the node reports another."
    )
    contract: str | None = Field(
        default=None, description="ProcurementAnchor address (default: the one `tenderproof deploy` recorded)."
    )
    confirmations: int = Field(default=12, ge=1, description="Blocks (the anchor's included) before it is final.")
    key: SecretStr | None = Field(default=None, description="Hex private key (default: TENDERPROOF_ANCHOR_KEY).")
    keystore: Path | None = Field(default=None, description="Encrypted JSON keystore file (instead of a key).")
    stuck_after: float = Field(
        default=180.0, ge=0, description="Seconds without inclusion before the transaction is replaced."
    )
    fee_bump_percent: int = Field(default=25, ge=10, le=500, description="Fee increase of a replacement.")
    max_fee_gwei: float = Field(
        default=500.0,
        gt=0,
        description="Never pay more than this per gas (gwei): fee bumps of a stuck transaction stop here.",
    )
    recheck_blocks: int = Field(
        default=64,
        ge=1,
        description="Final anchors are re-checked against the chain (transaction, block, time) every round "
        "until their block is this many blocks deep (a reorg deeper than the confirmations is still caught).",
    )
    rpc_timeout: float = Field(default=10.0, gt=0, description="Seconds before an RPC request is abandoned.")

    @field_validator("rpc_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if value != EMBEDDED and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s):// JSON-RPC URL or 'embedded'")
        return value

    @field_validator("contract")
    @classmethod
    def _is_address(cls, value: str | None) -> str | None:
        if value is not None and not _ADDRESS.match(value):
            raise ValueError("must be a 0x-prefixed 20-byte hex address")
        return value

    @model_validator(mode="after")
    def _one_key_source(self) -> ChainSettings:
        if self.key is not None and self.keystore is not None:
            raise ValueError("give either key or keystore, not both")
        return self

    @property
    def embedded(self) -> bool:
        return self.rpc_url == EMBEDDED


#: The default: one development chain in the process, final at inclusion.
DEV_CHAIN = ChainSettings(name="dev", rpc_url=EMBEDDED, confirmations=1)


#: The embedded default: a SQLite file in the working directory.
DEFAULT_DATABASE_URL = "sqlite:///tenderproof.db"
#: The development log's name. A real deployment names its own (e.g. "tenders.example.gov/log").
DEV_ORIGIN = "localhost/tenderproof-dev"


class WitnessSettings(BaseModel):
    """A witness the publishing round asks to cosign the log's checkpoints (C2SP tlog-witness)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field(description="The witness's submission prefix (POST <url>/add-checkpoint).")
    key: str = Field(description="The witness's cosigner verifier key (C2SP vkey, type 0x04).")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TENDERPROOF_", env_file=".env", extra="ignore", frozen=True)

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL: sqlite:///file.db or postgresql://user@host/db",
    )
    database_replica_urls: list[str] = Field(
        default=[],
        description="PostgreSQL streaming replicas (hot standby) of the database, as a JSON list of URLs: the API"
        " and the explorer read from them, writes go to TENDERPROOF_DATABASE_URL (docs/operations.md, Read replicas).",
    )
    replica_max_lag: float = Field(
        default=5.0,
        gt=0,
        description="Seconds a replica may be behind the primary and still serve reads; a replica further behind, or"
        " not answering, is skipped until it catches up.",
    )
    replica_check_interval: float = Field(
        default=1.0, gt=0, description="Seconds between two health checks of each replica (lag, in recovery, up)."
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
    log_signing_key: SecretStr | None = Field(
        default=None,
        description="C2SP signer key (PRIVATE+KEY+...) that signs the log's checkpoints (make one with"
        " `tenderproof keys log-signing-key`); unset: checkpoints are not signed.",
    )
    log_signing_key_file: Path | None = Field(
        default=None, description="File holding the log's signer key (instead of TENDERPROOF_LOG_SIGNING_KEY)."
    )
    witnesses: list[WitnessSettings] = Field(
        default=[],
        description="Witnesses that cosign each anchoring round's checkpoint, as a JSON list of {url, key}"
        " (needs TENDERPROOF_LOG_SIGNING_KEY); a witness down never stops anchoring.",
    )
    witness_quorum: int | None = Field(
        default=None,
        ge=0,
        description="Cosignatures wanted per checkpoint (default: all witnesses); a shortfall is logged.",
    )
    witness_timeout: float = Field(default=5.0, gt=0, description="Seconds a witness may take to answer.")
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
        description="Where rate-limit counters live: 'memory://' (per process) or 'redis://host:6379/0' (shared by"
        " every worker and host; see the `limits` library). While Redis does not answer, each process counts on its"
        " own (logged), requests are never refused for it.",
    )
    max_concurrency: int = Field(
        default=64, ge=1, description="Requests served at once per process; more are refused with 503 + Retry-After."
    )
    body_timeout: float = Field(
        default=10.0,
        gt=0,
        description="Seconds a client has to send a request's whole body; a slower one gets 408 (no slot is held "
        "meanwhile: the concurrency limit applies once the body has arrived).",
    )
    header_timeout: float = Field(
        default=10.0,
        gt=0,
        description="Seconds a client has to send a request's head (request line and headers) once it connects or "
        "starts its next request; a slower one gets 408 and is disconnected (`tenderproof serve`).",
    )
    keep_alive_timeout: int = Field(
        default=5, ge=1, description="Seconds an idle keep-alive connection stays open (`tenderproof serve`)."
    )
    max_connections: int = Field(
        default=4096,
        ge=1,
        description="Connections (and requests in progress) one `tenderproof serve` process accepts; beyond, uvicorn "
        "answers 503 at once. Above what the proxy sends (its limit_conn and keep-alive pool).",
    )
    max_client_requests: int = Field(
        default=16,
        ge=1,
        description="Requests one client (IP, as the trusted proxy says) may have in progress at once, body "
        "reading included; more get 429.",
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
        description="Refuse tender events that are not signed by a registered officer (EIP-712, docs/spec.md §7).",
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
    group_commit: int = Field(
        default=256,
        ge=1,
        description="Concurrent single-event writes of one server process committed together, at most this"
        " many in one transaction and one flush (group commit; 1: each write commits alone).",
    )
    api_key_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        description="Seconds a server process reuses an authenticated API key without reading it again: a revoked"
        " key is refused by every process within this bound (an expired one at once; 0: read on every request).",
    )
    idempotency_ttl: float = Field(
        default=86_400.0, gt=0, description="Seconds a write's Idempotency-Key is remembered."
    )
    desk_session_seconds: float = Field(
        default=28_800.0,
        gt=0,
        description="Seconds an officers' desk session (/desk, an API key exchanged for a cookie) lasts after"
        " signing in; it ends earlier when the officer signs out or the key is revoked or expires.",
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
    known_chains: dict[int, KnownChain] = Field(
        default_factory=dict,
        description="Chains the explorer names in words, by chain id, added to (or replacing) its own table, as JSON:"
        ' {"8453": {"name": "Base", "explorer": "https://basescan.org"}}. TENDERPROOF_BLOCK_EXPLORER_URL still wins.',
    )
    redflags_settings: Path | None = Field(
        default=None,
        description="A Cardinal settings file (INI) with this deployment's red-flag thresholds, e.g. R003's minimum"
        " days per procurement method or procurementMethodDetails (default: Cardinal's defaults; see Red flags).",
    )
    privacy_rules: Path | None = Field(
        default=None,
        description="A JSON file of rules (tenderproof-privacy-rules/1) saying which payload fields hold personal data"
        " of natural persons (default: the shipped OCDS rules; see docs/privacy.md).",
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

    @model_validator(mode="after")
    def _one_log_key_source(self) -> Settings:
        if self.log_signing_key is not None and self.log_signing_key_file is not None:
            raise ValueError("give either log_signing_key or log_signing_key_file, not both")
        return self

    def log_signing_key_text(self) -> str | None:
        """The log's signer key (a secret: never logged), from the setting or its file."""
        if self.log_signing_key is not None:
            return self.log_signing_key.get_secret_value()
        if self.log_signing_key_file is not None:
            try:
                return self.log_signing_key_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ValueError(
                    f"log_signing_key_file: cannot read {self.log_signing_key_file}: {exc.strerror}"
                ) from None
        return None

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

    @field_validator("database_replica_urls")
    @classmethod
    def _replicas_are_postgresql(cls, value: list[str]) -> list[str]:
        for i, url in enumerate(value):
            if not url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
                raise ValueError(f"entry {i}: a replica must be a postgresql:// URL")
        return value

    @model_validator(mode="after")
    def _replicas_need_postgresql(self) -> Settings:
        if self.database_replica_urls and not self.database_url.startswith(("postgres", "postgresql")):
            raise ValueError("database_replica_urls: replicas need a PostgreSQL database_url (the primary)")
        return self

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
