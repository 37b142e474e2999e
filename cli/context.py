"""What every command shares: the settings (built when first needed, from the environment and
the group's flags), the log (opened and migrated once), the clock, and chain selection."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from ledger.log import Log
    from settings import ChainSettings, Settings


def now() -> datetime:
    return datetime.now(UTC)


class Env:
    """The command line's environment. Nothing is read or opened until a command asks."""

    def __init__(self, overrides: dict[str, Any]) -> None:
        self._overrides = {key: value for key, value in overrides.items() if value}
        self._log: Log | None = None

    @cached_property
    def settings(self) -> Settings:
        from settings import Settings

        return Settings(**self._overrides)

    @property
    def log(self) -> Log:
        """The log of the configured database, opened (and migrated) on first use."""
        if self._log is None:
            from ledger.log import Log
            from settings.runtime import bound_recursion

            bound_recursion()  # a dependency raised it: nested data must raise RecursionError, not crash
            from ledger.procurement import privacy, redflags

            redflags.configure_file(self.settings.redflags_settings)
            privacy.configure_file(self.settings.privacy_rules)
            self._log = Log.open(self.settings.database_url, origin=self.settings.origin)
        return self._log

    def chains(self, name: str | None) -> list[ChainSettings]:
        """Every configured chain, or only the one called ``name`` (``--chain``)."""
        from ledger.core.errors import InvalidArgumentError

        if name is None:
            return list(self.settings.chains)
        found = [chain for chain in self.settings.chains if chain.name == name]
        if not found:
            known = ", ".join(chain.name for chain in self.settings.chains)
            raise InvalidArgumentError(
                "--chain", f"no chain named {name!r} is configured (TENDERPROOF_CHAINS has: {known})"
            )
        return found

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


pass_env = click.make_pass_decorator(Env)
