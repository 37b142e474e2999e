"""The periodic anchoring job on APScheduler: alone (``tenderproof anchor --watch``) or in
the background of the server."""

from __future__ import annotations

import logging
import signal
from datetime import UTC, datetime
from types import FrameType

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger

from .service import AnchoringService

log = logging.getLogger(__name__)

JOB_ID = "tenderproof-anchor"


def _add_job(scheduler: BaseScheduler, service: AnchoringService, poll: float) -> None:
    # One run at a time; runs missed while one was slow are merged, not queued.
    scheduler.add_job(
        service.tick,
        IntervalTrigger(seconds=poll),
        id=JOB_ID,
        max_instances=1,
        coalesce=True,
        next_run_time=datetime.now(UTC),
    )


def start_background(service: AnchoringService, *, poll: float) -> BackgroundScheduler:
    """Run the job in a thread of this process (the server's); stop it with ``shutdown()``."""
    scheduler = BackgroundScheduler(timezone=UTC)
    _add_job(scheduler, service, poll)
    scheduler.start()
    return scheduler


def run_forever(service: AnchoringService, *, poll: float) -> None:
    """Run the job in this thread until SIGINT or SIGTERM, then release the leases."""
    scheduler = BlockingScheduler(timezone=UTC)
    _add_job(scheduler, service, poll)

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping the anchoring job", signum)
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        scheduler.start()
    finally:
        service.close()
