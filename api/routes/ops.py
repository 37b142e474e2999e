"""Probes and metrics for operators: ``/healthz`` (alive), ``/readyz`` (can serve: the database
and every configured chain answer), ``/metrics`` (Prometheus)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import httpx
from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ledger.core.errors import NotFoundError
from settings import ChainSettings

from .. import schemas
from ..deps import LogSignerDep, MirrorDep, SettingsDep
from ..errors import NOT_FOUND_RESPONSES

router = APIRouter(tags=["ops"])


@router.get(
    "/.well-known/tenderproof/checkpoint-key",
    summary="The verifier key of the log's signed checkpoints",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}, 404: NOT_FOUND_RESPONSES[404]},
)
def get_checkpoint_key(signer: LogSignerDep, mirror: MirrorDep) -> Response:
    """The C2SP verifier key (``name+hash+base64``) that checks the log's signed checkpoints; an
    auditor pins it (``tenderproof verify --log-key``). 404 when checkpoints are not signed. A
    mirror serves the log's key its monitor pinned."""
    key = str(signer.verifier) if signer is not None else None if mirror is None else mirror.key()
    if key is None:
        raise NotFoundError("this log signs no checkpoints (no TENDERPROOF_LOG_SIGNING_KEY)")
    return Response(f"{key}\n", media_type="text/plain; charset=utf-8")


@router.get("/healthz", response_model=schemas.Health, summary="Liveness")
async def healthz() -> schemas.Health:
    """The process is up and answering; says nothing about the database (see /readyz)."""
    return schemas.Health(status="ok")


def _probe_thread(request: Request) -> ThreadPoolExecutor:
    """The application's one thread for the database probe of ``/readyz`` (made on first use):
    a saturated server's shared thread pool cannot make the probe miss its timeout."""
    state = request.app.state
    executor: ThreadPoolExecutor | None = getattr(state, "probe_thread", None)
    if executor is None:
        executor = state.probe_thread = ThreadPoolExecutor(1, thread_name_prefix="readyz")
    return executor


def _check_database(request: Request) -> None:
    log = request.app.state.log
    if log is None:
        raise RuntimeError("the log is not open")
    log.reader.tree_head()


async def _check_chain(chain: ChainSettings, timeout: float) -> str | None:
    """``None`` if ``chain``'s JSON-RPC endpoint answers ``eth_chainId`` (with the configured id,
    if one is), else why not. The endpoint URL is never echoed: it may hold an API key."""
    if chain.embedded:
        return None  # in this process
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            answer = await client.post(
                chain.rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
            )
        answer.raise_for_status()
        chain_id = int(answer.json()["result"], 16)
    except httpx.TimeoutException:
        return f"no answer within {timeout} s"
    except httpx.HTTPStatusError as exc:
        return f"the endpoint answered HTTP {exc.response.status_code}"
    except (httpx.HTTPError, OSError) as exc:
        return f"unreachable ({type(exc).__name__})"
    except (ValueError, KeyError, TypeError):
        return "not a JSON-RPC answer to eth_chainId"
    if chain.chain_id is not None and chain_id != chain.chain_id:
        return f"the node is on chain {chain_id}, configured {chain.chain_id}"
    return None


@router.get(
    "/readyz",
    response_model=schemas.Readiness,
    summary="Readiness",
    responses={503: {"model": schemas.Readiness, "description": "A dependency failed; `checks` says which."}},
)
async def readyz(request: Request, settings: SettingsDep, response: Response) -> schemas.Readiness:
    """200 if this process has a free request slot and the database and every configured chain
    answer within ``ready_timeout`` seconds; 503 naming the checks that failed."""
    timeout = settings.ready_timeout

    async def database() -> str | None:
        # On the probe's own thread: never queued behind requests waiting for the shared pool.
        probe = asyncio.get_running_loop().run_in_executor(_probe_thread(request), _check_database, request)
        try:
            await asyncio.wait_for(probe, timeout)
        except TimeoutError:
            return f"no answer within {timeout} s"
        except Exception as exc:  # whatever the driver raises: the database cannot serve
            return f"unavailable ({type(exc).__name__})"
        return None

    async def capacity() -> str | None:
        load = getattr(request.app.state, "load", None)
        if load is not None and load.full:
            return f"overloaded: {load.in_flight} of {load.limit} requests in progress"
        return None

    names = ["database", *(f"chain:{chain.name}" for chain in settings.chains), "capacity"]
    failures = await asyncio.gather(
        database(), *(_check_chain(chain, timeout) for chain in settings.chains), capacity()
    )
    checks = [schemas.Dependency(name=n, ok=f is None, detail=f) for n, f in zip(names, failures, strict=True)]
    ready = all(check.ok for check in checks)
    if not ready:
        response.status_code = 503
        response.headers["Retry-After"] = "5"
    return schemas.Readiness(status="ready" if ready else "unavailable", checks=checks)


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus text exposition of this process's metrics."""
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
