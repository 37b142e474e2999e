"""The load and fault test of a scaled-out deployment (docs/operations.md), on one machine:

* a private PostgreSQL cluster (:class:`tests.cluster.PrivatePostgres`, restarted by the faults);
* a Hardhat JSON-RPC node behind a TCP proxy that the faults take down (the RPC outage);
* ``tenderproof serve --workers N --no-anchoring`` and M ``tenderproof anchor --watch`` processes;
* officers (one API key each) recording ``tender.clarified`` events on a few shared tenders, so
  their writes overlap, and the public reading tenders, their events and the checkpoint.

Clients behave as the API asks: a 503 must carry ``Retry-After``; half the officers send each
write with an ``Idempotency-Key`` and send a write that got no answer (connection cut, 503) again
with the same key until it is acknowledged; the other half send none (the path a single unsigned
write takes through the group commit without a waiting thread) and, as a client without a key
must, never send a write again: one that got no answer is counted as unanswered and may or may not
be in the log, once at most.
Each write's key is also the id of the enquiry in its payload, so the log itself shows whether a
write was recorded twice.

With ``faults``: kill -9 of an API worker (twice), kill -9 of the anchoring process that holds the
chain's lease (the standby must take the lease over by itself; the killed one is restarted as a
supervisor would), the chain's RPC endpoint cut off for ``rpc_outage`` seconds, and PostgreSQL
restarted. Afterwards :func:`verify` checks that every acknowledged write is in the log exactly
once, no write is there twice, the log's indices are dense, every tender's chain is complete,
the final checkpoint is anchored, and ``tenderproof audit`` (against the chain) is clean.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import func, select

from anchoring import store
from anchoring.schema import anchor_leases
from api import auth
from ledger.log import Log
from ledger.store.schema import events, log_entries
from tests.anchoring.nodes import CHAIN_ID, KEYS, Proxy, hardhat_node
from tests.cluster import ROOT, AnchorDaemon, ApiServer, cli, environment, kill, private_postgres, serve_api
from tests.procurement.helpers import published

ORIGIN = "load.tenderproof/log"
CHAIN = "local"


@dataclass(frozen=True)
class Config:
    duration: float = 600.0  # seconds of load
    api_workers: int = 4
    anchorers: int = 2
    officers: int = 8  # concurrent writing clients, one API key each
    readers: int = 8  # concurrent reading clients
    tenders: int = 12  # shared by every officer
    faults: bool = True
    rpc_outage: float = 60.0  # seconds the chain's endpoint is cut off
    lease_ttl: float = 5.0
    settle: float = 180.0  # seconds allowed after the load for the last anchor to become final
    seed: int = 2026


@dataclass
class Stats:
    write_latencies: list[float] = field(default_factory=list)  # ms, request to acknowledgement (retries included)
    read_latencies: list[float] = field(default_factory=list)  # ms, successful reads
    acknowledged: dict[str, dict[str, Any]] = field(default_factory=dict)  # write id -> the 201 body
    acknowledged_without_key: int = 0  # of those, sent without an Idempotency-Key
    given_up: list[str] = field(default_factory=list)  # writes never acknowledged before the deadline
    unanswered: list[str] = field(default_factory=list)  # writes without a key that got no answer
    retryable: dict[str, int] = field(default_factory=dict)  # "503 database_unavailable", "connection", ...
    anomalies: list[str] = field(default_factory=list)  # anything a client must never see
    reads: int = 0
    faults: list[tuple[float, str]] = field(default_factory=list)
    seconds: float = 0.0

    def retry(self, kind: str) -> None:
        self.retryable[kind] = self.retryable.get(kind, 0) + 1


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


# --- Clients ---------------------------------------------------------------------------------------


async def _send(
    session: aiohttp.ClientSession, stats: Stats, method: str, url: str, **kwargs: Any
) -> tuple[int, Any] | None:
    """One request; None when it must be retried (connection lost, 503 with Retry-After), after
    waiting a little (Retry-After, capped at 1 s so that short runs keep their pace)."""
    try:
        async with session.request(method, url, **kwargs) as response:
            body = await response.read()
            status = response.status
            if status == 503:
                code = json.loads(body)["error"]["code"]
                retry_after = response.headers.get("Retry-After")
                if retry_after is None:
                    stats.anomalies.append(f"{method} {url}: 503 {code} without Retry-After")
                stats.retry(f"503 {code}")
                await asyncio.sleep(min(1.0, float(retry_after or 1)) * random.uniform(0.5, 1.0))
                return None
            return status, json.loads(body) if body else None
    except (TimeoutError, aiohttp.ClientConnectionError) as exc:
        stats.retry(f"connection ({type(exc).__name__})")
        await asyncio.sleep(random.uniform(0.1, 0.3))
        return None


async def _officer(
    base: str,
    key: str,
    name: str,
    ocids: list[str],
    stats: Stats,
    stop: float,
    give_up: float,
    rng: random.Random,
    *,
    keyed: bool,
) -> None:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
        n = 0
        while time.monotonic() < stop:
            n += 1
            write_id = f"{name}-{n}"
            ocid = rng.choice(ocids)
            enquiry = {"id": write_id, "title": f"Question {n}", "answer": "See the amended specifications."}
            body = {"type": "tender.clarified", "payload": {"tender": {"id": "T-1", "enquiries": [enquiry]}}}
            started = time.monotonic()
            while True:
                if time.monotonic() > give_up:
                    stats.given_up.append(write_id)
                    return
                answer = await _send(
                    session,
                    stats,
                    "POST",
                    f"{base}/api/v1/tenders/{ocid}/events",
                    json=body,
                    headers={"Idempotency-Key": write_id} if keyed else {},
                )
                if answer is None:
                    if keyed:
                        continue
                    stats.unanswered.append(write_id)
                    break
                status, content = answer
                if status == 201 and content["ocid"] == ocid and content["type"] == "tender.clarified":
                    stats.acknowledged[write_id] = content
                    stats.acknowledged_without_key += not keyed
                    stats.write_latencies.append(1000 * (time.monotonic() - started))
                else:
                    stats.anomalies.append(f"write {write_id}: {status} {content}")
                break


async def _reader(base: str, ocids: list[str], stats: Stats, stop: float, rng: random.Random) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        while time.monotonic() < stop:
            ocid = rng.choice(ocids)
            path = rng.choice([f"/api/v1/tenders/{ocid}/events", f"/api/v1/tenders/{ocid}", "/api/v1/checkpoint"])
            started = time.monotonic()
            answer = await _send(session, stats, "GET", base + path)
            if answer is None:
                continue
            status, content = answer
            if status != 200:
                stats.anomalies.append(f"GET {path}: {status} {content}")
                continue
            stats.reads += 1
            stats.read_latencies.append(1000 * (time.monotonic() - started))
            if path.endswith("/events"):
                _check_chain(path, content["events"], stats)


def _check_chain(where: str, listed: list[dict[str, Any]], stats: Stats) -> None:
    """A tender's events as served: seq 0.., each ``prev`` the previous leaf hash."""
    previous = None
    for seq, event in enumerate(listed):
        if event["seq"] != seq or event["envelope"]["prev"] != previous:
            stats.anomalies.append(f"GET {where}: event {seq} breaks the chain: {event['seq']}, {event['envelope']}")
            return
        previous = event["leaf_hash"]


async def _load(base: str, keys: list[str], ocids: list[str], stats: Stats, config: Config) -> None:
    stop = time.monotonic() + config.duration
    give_up = stop + 120.0
    rng = random.Random(config.seed)
    tasks = [
        _officer(base, key, f"o{i}", ocids, stats, stop, give_up, random.Random(rng.random()), keyed=i % 2 == 0)
        for i, key in enumerate(keys)
    ]
    tasks += [_reader(base, ocids, stats, stop, random.Random(rng.random())) for _ in range(config.readers)]
    await asyncio.gather(*tasks)


# --- Faults ----------------------------------------------------------------------------------------


def _acting_anchorer(log: Log) -> int | None:
    """The pid of the process holding the chain's lease now (holders are ``host:pid:random``)."""
    with log.engine.connect() as conn:
        row = conn.execute(
            select(anchor_leases.c.holder, anchor_leases.c.expires_at).where(anchor_leases.c.name == f"chain:{CHAIN}")
        ).first()
    if row is None or store.utc(row.expires_at) <= datetime.now(UTC):
        return None
    return int(row.holder.split(":")[1])


def _retrying(action: Callable[[], Any], until: float) -> Any:
    while True:
        try:
            return action()
        except Exception:
            if time.monotonic() > until:
                raise
            time.sleep(0.5)


class Faults:
    """Injects the faults at random moments of the load, from a thread; records what it did."""

    def __init__(
        self, *, config: Config, server: ApiServer, anchorers: list[AnchorDaemon], proxy: Proxy, pg: Any, log: Log
    ) -> None:
        self.config = config
        self.server = server
        self.anchorers = anchorers
        self.proxy = proxy
        self.pg = pg
        self.log = log
        self.done: list[tuple[float, str]] = []
        self.errors: list[str] = []
        self._rng = random.Random(config.seed + 1)
        self._started = 0.0

    def _note(self, what: str) -> None:
        self.done.append((round(time.monotonic() - self._started, 1), what))

    def _at(self, fraction: float, spread: float = 0.05) -> None:
        moment = self._started + self.config.duration * (fraction + self._rng.uniform(-spread, spread))
        time.sleep(max(0.0, moment - time.monotonic()))

    def _kill_worker(self) -> None:
        workers = self.server.workers()
        victim = self._rng.choice(workers)
        kill(victim)
        self._note(f"kill -9 API worker {victim} (of {len(workers)})")

    def _kill_anchorer(self) -> None:
        until = time.monotonic() + 60
        acting = _retrying(lambda: _acting_anchorer(self.log), until)
        while acting is None and time.monotonic() < until:
            time.sleep(0.5)
            acting = _retrying(lambda: _acting_anchorer(self.log), until)
        victim = next((a for a in self.anchorers if a.pid == acting), None)
        if victim is None:
            self.errors.append(f"no anchoring process holds the lease (holder pid {acting})")
            return
        victim.kill()
        killed_at = time.monotonic()
        self._note(f"kill -9 acting anchoring process {acting}")
        deadline = killed_at + self.config.lease_ttl + 30
        while time.monotonic() < deadline:
            successor = _retrying(lambda: _acting_anchorer(self.log), deadline)
            if successor is not None and successor != acting:
                self._note(f"lease taken over by {successor} after {time.monotonic() - killed_at:.1f} s")
                break
            time.sleep(0.2)
        else:
            self.errors.append(f"no anchoring process took the lease over within {deadline - killed_at:.0f} s")
        victim.start()  # as systemd's Restart=always would; it comes back as the standby
        self._note(f"anchoring process restarted as {victim.pid}")

    def _rpc_outage(self) -> None:
        self.proxy.down()
        self._note(f"chain RPC cut off for {self.config.rpc_outage:.0f} s")
        time.sleep(self.config.rpc_outage)
        self.proxy.up()
        self._note("chain RPC back")

    def _restart_postgres(self) -> None:
        self.pg.restart()
        self._note("PostgreSQL restarted (pg_ctl restart -m fast)")

    def run(self) -> None:
        self._started = time.monotonic()
        steps: list[tuple[float, Callable[[], None]]] = [
            (0.12, self._kill_worker),
            (0.25, self._kill_anchorer),
            (0.40, self._rpc_outage),
            (0.70, self._restart_postgres),
            (0.85, self._kill_worker),
        ]
        for fraction, step in steps:
            self._at(fraction)
            try:
                step()
            except Exception as exc:  # reported as a failed check, the load goes on
                self.errors.append(f"{step.__name__}: {type(exc).__name__}: {exc}")


# --- The deployment, the run and the checks --------------------------------------------------------


@contextmanager
def deployment(config: Config, directory: Path) -> Iterator[tuple[ApiServer, list[AnchorDaemon], Proxy, Any, str]]:
    """PostgreSQL, the chain behind its proxy, the contract, the API server and the anchorers."""
    with ExitStack() as stack:
        pg = stack.enter_context(private_postgres())
        node = stack.enter_context(hardhat_node())
        proxy = Proxy(node.port)
        proxy.up()
        stack.callback(proxy.down)
        chain = {"name": CHAIN, "rpc_url": proxy.url, "chain_id": CHAIN_ID, "confirmations": 1, "rpc_timeout": 5}
        env = {
            "TENDERPROOF_CHAINS": json.dumps([chain]),
            "TENDERPROOF_ANCHOR_KEY": KEYS[0],
            "TENDERPROOF_ANCHOR_INTERVAL": "3",
            "TENDERPROOF_ANCHOR_POLL": "1",
            "TENDERPROOF_LEASE_TTL": str(config.lease_ttl),
            "TENDERPROOF_RATE_LIMIT": "off",  # every client is 127.0.0.1
            "TENDERPROOF_MAX_CONCURRENCY": "1000",
        }
        subprocess.run(
            cli(pg.url, ORIGIN, "deploy", "--chain", CHAIN), cwd=ROOT, env=environment(env), check=True, timeout=120
        )
        server = stack.enter_context(
            serve_api(pg.url, origin=ORIGIN, workers=config.api_workers, log_file=directory / "api.log", env=env)
        )
        anchorers = [
            AnchorDaemon(pg.url, origin=ORIGIN, log_file=directory / f"anchor-{i}.log", env=env)
            for i in range(config.anchorers)
        ]
        for daemon in anchorers:
            daemon.start()
            stack.callback(daemon.stop)
        yield server, anchorers, proxy, pg, json.dumps(env)


def run(config: Config, directory: Path) -> dict[str, Any]:
    """The whole test; returns its figures and ``problems`` (empty when everything held)."""
    stats = Stats()
    with deployment(config, directory) as (server, anchorers, proxy, pg, env_json):
        env = json.loads(env_json)
        log = Log.open(pg.url, origin=ORIGIN)
        try:
            keys = [
                auth.create_key(log.engine, name=f"officer {i}", role="officer", now=datetime.now(UTC))[1]
                for i in range(config.officers)
            ]
            ocids = _create_tenders(server.base, keys[0], config.tenders)
            faults = Faults(config=config, server=server, anchorers=anchorers, proxy=proxy, pg=pg, log=log)
            injector = threading.Thread(target=faults.run, daemon=True) if config.faults else None
            started = time.monotonic()
            if injector is not None:
                injector.start()
            asyncio.run(_load(server.base, keys, ocids, stats, config))
            stats.seconds = time.monotonic() - started
            if injector is not None:
                injector.join(timeout=config.rpc_outage + 120)
                stats.faults = faults.done
                stats.anomalies += [f"fault injection: {e}" for e in faults.errors]
            problems, final = verify(log, stats, ocids, pg.url, env, config)
        finally:
            log.close()
    return _figures(stats, config, problems, final)


def _create_tenders(base: str, key: str, count: int) -> list[str]:
    import httpx

    now = datetime.now(UTC)
    period = {
        "startDate": (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "endDate": (now + timedelta(days=365)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    ocids = []
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
        for n in range(count):
            ocid = f"ocds-tp0dev-load-{n:04d}"
            body = {"ocid": ocid, "type": "tender.published", "payload": published(f"Lot {n}", tenderPeriod=period)}
            answer = client.post("/api/v1/tenders", json=body)
            if answer.status_code != 201:
                raise RuntimeError(f"creating tender {ocid}: {answer.status_code} {answer.text}")
            ocids.append(ocid)
    return ocids


def _wait_final(log: Log, config: Config) -> tuple[int, int | None]:
    """Until the anchorers have integrated everything and the final anchor covers it all."""
    deadline = time.monotonic() + config.settle
    size, anchored = 0, None
    while time.monotonic() < deadline:
        try:
            size = log.reader.tree_head().size
            pending = log.reader.pending_count()
            final = store.latest_final(log.engine, CHAIN)
        except Exception:
            time.sleep(1)
            continue
        anchored = None if final is None else final.tree_size
        if pending == 0 and anchored == size:
            break
        time.sleep(1)
    return size, anchored


def verify(
    log: Log, stats: Stats, ocids: list[str], url: str, env: dict[str, str], config: Config
) -> tuple[list[str], dict[str, Any]]:
    """Every check of the run: the list of what failed, and the final state's figures."""
    problems = list(stats.anomalies)
    size, anchored = _wait_final(log, config)
    if anchored != size:
        problems.append(f"final checkpoint not anchored within {config.settle:.0f} s: size {size}, final {anchored}")
    with log.engine.connect() as conn:
        total, distinct, low, high = conn.execute(
            select(
                func.count(),
                func.count(func.distinct(log_entries.c.event_id)),
                func.min(log_entries.c.idx),
                func.max(log_entries.c.idx),
            )
        ).one()
        recorded = conn.execute(select(func.count()).select_from(events)).scalar_one()
    if not (total == distinct == size == recorded and low == 0 and high == size - 1):
        problems.append(f"log indices: {total} entries, {distinct} events, [{low}, {high}], size {size}, {recorded}")
    seen: dict[str, int] = {}  # write id -> times in the log
    placed: dict[str, tuple[str, int]] = {}  # leaf hash -> (ocid, seq)
    for ocid in ocids:
        previous = None
        for seq, event in enumerate(log.reader.tender_events(ocid)):
            envelope = json.loads(event.envelope)
            if event.seq != seq or envelope["prev"] != previous or event.index is None:
                problems.append(f"tender {ocid}: event {seq} breaks the chain or is not integrated")
                break
            previous = event.leaf_hash.hex()
            placed[previous] = (ocid, seq)
            for enquiry in json.loads(event.payload).get("tender", {}).get("enquiries", []):
                seen[enquiry["id"]] = seen.get(enquiry["id"], 0) + 1
    for write_id, ack in stats.acknowledged.items():
        if placed.get(ack["leaf_hash"]) != (ack["ocid"], ack["seq"]):
            problems.append(f"acknowledged write {write_id} ({ack['ocid']} seq {ack['seq']}) is not in the log as such")
    twice = sorted(w for w, n in seen.items() if n > 1)
    if twice:
        problems.append(f"{len(twice)} writes recorded more than once: {twice[:5]}")
    lost = sorted(w for w in stats.acknowledged if w not in seen)
    if lost:
        problems.append(f"{len(lost)} acknowledged writes missing from the log: {lost[:5]}")
    audit = subprocess.run(
        cli(url, ORIGIN, "audit", "--json"), cwd=ROOT, env=environment(env), capture_output=True, timeout=600
    )
    report = json.loads(audit.stdout) if audit.stdout.strip().startswith(b"{") else {}
    if audit.returncode != 0 or not report.get("ok") or report.get("anchors_on_chain", 0) < 1:
        problems.append(f"tenderproof audit: exit {audit.returncode}, {report or audit.stderr.decode()[-2000:]}")
    final = {
        "writes never acknowledged (given up)": len(stats.given_up),
        "writes without a key that got no answer": len(stats.unanswered),
        "final tree size": size,
        "final anchor tree size": anchored,
        "final anchors checked by audit": int(report.get("anchors_checked", 0)),
        "anchors checked on chain by audit": int(report.get("anchors_on_chain", 0)),
    }
    return problems, final


def _figures(stats: Stats, config: Config, problems: list[str], final: dict[str, Any]) -> dict[str, Any]:
    return {
        "config": config.__dict__,
        "seconds": round(stats.seconds, 1),
        "writes acknowledged": len(stats.acknowledged),
        "writes acknowledged without a key": stats.acknowledged_without_key,
        "writes/s": round(len(stats.acknowledged) / max(stats.seconds, 1e-9), 1),
        "write p50 (ms)": round(percentile(stats.write_latencies, 0.50), 1),
        "write p95 (ms)": round(percentile(stats.write_latencies, 0.95), 1),
        "write p99 (ms)": round(percentile(stats.write_latencies, 0.99), 1),
        "reads": stats.reads,
        "reads/s": round(stats.reads / max(stats.seconds, 1e-9), 1),
        "read p50 (ms)": round(percentile(stats.read_latencies, 0.50), 1),
        "read p95 (ms)": round(percentile(stats.read_latencies, 0.95), 1),
        "read p99 (ms)": round(percentile(stats.read_latencies, 0.99), 1),
        "retryable answers": dict(sorted(stats.retryable.items())),
        **final,
        "faults": stats.faults,
        "problems": problems,
    }
