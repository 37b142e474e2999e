"""How one chain is reached and used: what ``TENDERPROOF_CHAINS`` holds, one object per chain."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

#: ``rpc_url`` of the in-process development chain (eth-tester on py-evm).
EMBEDDED = "embedded"

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


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
    max_fee_gwei: float | None = Field(default=None, gt=0, description="Never pay more than this per gas.")
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
