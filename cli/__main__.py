"""``python -m cli``: the same as the ``tenderproof`` command."""

from cli import entrypoint

entrypoint()
