"""`tenderproof serve` stopped with SIGTERM while officers write: the writes in flight are drained.

Single unsigned writes without an ``Idempotency-Key`` are queued by the event loop to the group
commit, with no thread waiting for them (:meth:`ledger.sequencer.GroupCommit.submit`): the
answer comes from the batch's leader after the commit. A stop must not cut that short. uvicorn
stops accepting at SIGTERM and waits for the requests it is serving, so each of those must be
answered once its event is durable; a client then sees a 201 (its event in the log exactly
once, with the seq it was told) or no answer at all (its event in the log at most once), never
an error, and the server exits by itself. The load test (tests/load) kills workers with
SIGKILL; this is the orderly stop a supervisor or a deploy sends.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from sqlalchemy import select

from ledger.log import Log
from ledger.store.schema import events, payloads
from tests.cluster import create_key, publish_tender, serve_api
from tests.conftest import ORIGIN

OCID = "ocds-213czf-graceful-stop"
#: Concurrent writers, under the per-client limit of requests in progress (16, one API key).
CLIENTS = 12
#: Writes acknowledged before the stop is sent, so that the group commit is busy when it comes.
BEFORE_STOP = 150


@dataclass
class Outcomes:
    acknowledged: dict[str, dict[str, Any]] = field(default_factory=dict)  # enquiry id -> the 201's body
    #: Of those, answered with ``Connection: close``: in progress when their worker began to stop
    #: (uvicorn lets such a request finish and closes its connection after the answer).
    drained: int = 0
    unanswered: list[str] = field(default_factory=list)  # connection refused, reset or closed
    anomalies: list[str] = field(default_factory=list)  # any answer but a 201


async def _officer(base: str, key: str, name: str, outcomes: Outcomes) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=60)) as session:
        for n in range(10_000):
            write = f"{name}-{n}"
            enquiry = {"id": write, "title": f"Question {n}", "answer": "See the amended specifications."}
            body = {"type": "tender.clarified", "payload": {"tender": {"id": "T-1", "enquiries": [enquiry]}}}
            try:
                async with session.post(f"{base}/api/v1/tenders/{OCID}/events", json=body) as response:
                    status, content = response.status, await response.read()
                    closing = response.headers.get("Connection", "").lower() == "close"
            except (TimeoutError, aiohttp.ClientConnectionError):
                outcomes.unanswered.append(write)  # without a key it is never sent again
                return
            if status != 201:
                outcomes.anomalies.append(f"{write}: {status} {content[:200]!r}")
                return
            outcomes.acknowledged[write] = json.loads(content)
            outcomes.drained += closing


async def _load_then_stop(base: str, key: str, stop: Any) -> Outcomes:
    outcomes = Outcomes()
    officers = [asyncio.create_task(_officer(base, key, f"officer{i}", outcomes)) for i in range(CLIENTS)]
    deadline = time.monotonic() + 120
    while len(outcomes.acknowledged) < BEFORE_STOP and not outcomes.anomalies and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    stop()
    await asyncio.wait_for(asyncio.gather(*officers), timeout=90)
    return outcomes


def _clarifications(url: str) -> dict[str, list[int]]:
    """Each enquiry id in the tender's stored events, with the seqs of the events that hold it."""
    log = Log.open(url, origin=ORIGIN, migrate=False)
    try:
        with log.engine.connect() as conn:
            rows = conn.execute(
                select(events.c.seq, payloads.c.body)
                .join(payloads, payloads.c.event_id == events.c.id)
                .where(events.c.ocid == OCID, events.c.type == "tender.clarified")
            ).all()
            seqs = sorted(int(s) for s in conn.execute(select(events.c.seq).where(events.c.ocid == OCID)).scalars())
        assert seqs == list(range(len(seqs))), "the tender's chain has a gap or a repeat"
        found: dict[str, list[int]] = {}
        for seq, body in rows:
            for enquiry in json.loads(bytes(body))["tender"]["enquiries"]:
                found.setdefault(enquiry["id"], []).append(int(seq))
        return found
    finally:
        log.close()


def test_sigterm_answers_the_writes_in_flight_and_loses_none(db_url: str, tmp_path: Path) -> None:
    log_file = tmp_path / "server.log"
    env = {"TENDERPROOF_RATE_LIMIT": "off"}  # every client is 127.0.0.1
    Log.open(db_url, origin=ORIGIN).close()  # migrated before the key is made
    key = create_key(db_url, origin=ORIGIN, name="graceful-officer")
    with serve_api(db_url, origin=ORIGIN, workers=2, log_file=log_file, env=env) as server:
        with httpx.Client(base_url=server.base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as http:
            publish_tender(http, OCID)
        outcomes = asyncio.run(_load_then_stop(server.base, key, lambda: server.process.send_signal(signal.SIGTERM)))
        exit_code = server.process.wait(timeout=60)  # by itself: serve_api's SIGKILL comes only after 30 s more

    assert outcomes.anomalies == []
    assert exit_code == 0, log_file.read_text()[-2000:]
    assert len(outcomes.acknowledged) >= BEFORE_STOP
    # the stop came while writes were queued or committing, and those were answered, not dropped
    assert outcomes.drained > 0, "no write in progress at the stop was answered"
    stored = _clarifications(db_url)
    for write, answer in outcomes.acknowledged.items():
        assert stored.get(write) == [answer["seq"]], f"acknowledged write {write}: stored at seqs {stored.get(write)}"
    # a write without an answer is one the server never took (refused or closed before it was
    # read): one it took was drained to its answer, so none is in the log unanswered
    taken = sorted(set(stored) & set(outcomes.unanswered))
    assert taken == [], f"written but never answered: {taken}"
    assert set(stored) <= set(outcomes.acknowledged) | set(outcomes.unanswered)
    text = log_file.read_text()
    assert "Traceback" not in text and '"level": "ERROR"' not in text, text[-2000:]
