"""Configuration, read from the environment at the edge and passed inward.

Every setting is ``TENDERPROOF_<NAME>`` in the environment (a ``.env`` file in
the working directory is read too); command-line flags override them.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from anchoring.config import DEV_CHAIN, ChainSettings

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
