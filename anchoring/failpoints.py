"""Crash points for the fault tests, in the style of etcd's gofail and FoundationDB's buggify.

``TENDERPROOF_FAILPOINTS=anchor.prepared,anchor.sent`` makes the process kill itself (SIGKILL:
no cleanup, no flush, as a power cut would) when it reaches one of the named points. Unset, a
point costs one environment lookup. The points sit right after each durable step of an
anchor's state machine, so that a test can show the step after it resumes correctly.
"""

from __future__ import annotations

import os
import signal

ENV = "TENDERPROOF_FAILPOINTS"

#: Every point, in the order an anchor reaches them.
POINTS = (
    "anchor.prepared",  # signed transaction stored, not yet broadcast
    "anchor.broadcast",  # broadcast, state not yet updated
    "anchor.sent",  # state 'sent' stored
    "anchor.included",  # state 'included' stored
    "anchor.final",  # state 'final' stored
    "anchor.replacement",  # replacement transaction stored, not yet broadcast
)


def reached(point: str) -> None:
    """Die here if ``point`` is armed."""
    armed = os.environ.get(ENV)
    if armed and point in armed.split(","):
        os.kill(os.getpid(), signal.SIGKILL)
