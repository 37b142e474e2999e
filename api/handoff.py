"""One hand-off from the event loop to a thread and back, at the least cost: the thin write path's
(:mod:`api.thin`), one a request.

Starlette's ``run_in_threadpool`` goes through anyio's worker-thread machinery (a capacity
limiter, a worker's queue and its ``Condition``, the async library sniffed on every call): ~60 µs
of CPU a call under 16 concurrent callers, ~10 % of a single write's server CPU under 32 clients
(bench/RESULTS-writes.md, round 6). ``loop.run_in_executor`` on a ``ThreadPoolExecutor`` costs
~15 µs (its ``concurrent.futures.Future`` and idle semaphore take ``Condition`` s too). This pool
costs ~5 µs: its threads take calls from one ``queue.SimpleQueue`` (in C) and each answer is one
``loop.call_soon_threadsafe`` that settles the caller's own asyncio future.

What the caller sees is what ``run_in_threadpool`` gives: the function's result or its exception,
the function run in a copy of the caller's context (``contextvars``), at most ``size`` functions
at once (anyio's default limiter's, 40: more calls wait their turn in order). And, as anyio's
hand-off (not abandoned on cancellation), a cancelled caller is cancelled only once its function
has returned, or without it ever running if no thread had taken it yet: a write is then committed
or not, never left running behind a request already answered.
"""

from __future__ import annotations

import asyncio
import contextvars
import queue
import threading
from collections.abc import Callable
from typing import Any, Protocol

from anyio.to_thread import current_default_thread_limiter


class Group(Protocol):
    """What :func:`submit` uses of a group commit (``ledger.sequencer.GroupCommit``, which this
    layer does not import: ``ledger.log.Log.group`` is one)."""

    def submit(self, prepare: Callable[[], Any], *, answer: Callable[[Any, BaseException | None], None]) -> Any: ...

    def withdraw(self, member: Any) -> bool: ...


class _Call:
    """One call: what to run, and where to answer."""

    __slots__ = ("after", "answered", "arguments", "context", "fn", "future", "loop", "withdrawn")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], fn: Callable[..., Any], arguments: Any
    ) -> None:
        self.loop = loop
        self.future = future
        self.fn = fn
        self.arguments = arguments
        self.context = contextvars.copy_context()
        self.withdrawn = False  # the caller was cancelled before a thread took the call: not run
        self.after: asyncio.Future[None] | None = None  # set when a cancelled caller waits for the end
        self.answered = False  # the thread's answer has run on the loop (:func:`_settle`)

    def withdraw(self) -> bool:
        """The caller is cancelled: not run if no thread has taken it yet. False: the thread
        answers it even so (:func:`_outcome` waits for that)."""
        self.withdrawn = True
        return False


class _Submitted:
    """A write submitted to a group commit (:func:`submit`): where its batch's leader answers."""

    __slots__ = ("after", "answered", "future", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.future: asyncio.Future[Any] = loop.create_future()
        self.after: asyncio.Future[None] | None = None
        self.answered = False

    def answer(self, result: Any, error: BaseException | None) -> None:
        """On the leader's thread: the outcome goes to the caller's loop."""
        try:  # noqa: SIM105 (once a write: no context manager on this path)
            self.loop.call_soon_threadsafe(_settle, self, result, error)
        except RuntimeError:  # the loop is closed: no one is waiting any more
            pass


def _settle(call: _Call | _Submitted, result: Any, error: BaseException | None) -> None:
    """On the caller's loop: the caller's future gets the outcome (unless cancelled meanwhile)."""
    call.answered = True
    future = call.future
    if not future.done():
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)
    if call.after is not None and not call.after.done():
        call.after.set_result(None)


class Handoff:
    """A pool of up to ``size`` threads that run functions for coroutines (see the module).

    Threads are started as calls find none idle, up to ``size``, and then kept (daemon threads:
    at exit, uvicorn has already waited for the requests in flight)."""

    def __init__(self, size: int, *, name: str = "handoff") -> None:
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.size = size
        self.name = name
        self._calls: queue.SimpleQueue[_Call] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0  # threads waiting for a call, less the calls already queued for them

    @property
    def threads(self) -> int:
        return self._threads

    async def run(self, fn: Callable[..., Any], arguments: dict[str, Any]) -> Any:
        """``fn(**arguments)`` on a thread of the pool, in a copy of the current context: its
        result, or the exception it raised."""
        loop = asyncio.get_running_loop()
        call = _Call(loop, loop.create_future(), fn, arguments)
        with self._lock:
            if self._idle > 0:
                self._idle -= 1
                start = False
            else:
                start = self._threads < self.size
                if start:
                    self._threads += 1
        self._calls.put(call)
        if start:
            threading.Thread(target=self._work, name=f"{self.name}-{self._threads}", daemon=True).start()
        return await _outcome(call, call.withdraw)

    def _work(self) -> None:
        calls = self._calls
        while True:
            call = calls.get()
            result: Any = None
            error: BaseException | None = None
            if not call.withdrawn:
                try:
                    result = call.context.run(call.fn, **call.arguments)
                except BaseException as exc:  # the caller's to handle, as run_in_threadpool raises it
                    error = exc
            with self._lock:  # idle before the caller hears: its next call finds this thread
                self._idle += 1
            try:  # noqa: SIM105 (once a call: no context manager on this path)
                call.loop.call_soon_threadsafe(_settle, call, result, error)
            except RuntimeError:  # the loop is closed: no one is waiting any more
                pass
            del call, result, error  # not kept alive until the next call


async def _outcome(call: _Call | _Submitted, withdraw: Callable[[], bool]) -> Any:
    """What ``call`` is answered. Cancelled, the caller is cancelled at once if ``withdraw()``
    takes the call back before it runs, else only once the answer has come (a write is then
    committed or not, never left running behind a request already answered)."""
    try:
        return await call.future
    except asyncio.CancelledError:
        # on the loop, as the answer: either it has run, or it will find ``after`` to settle
        if not call.answered and not withdraw():
            call.after = call.loop.create_future()
            await asyncio.shield(call.after)
        raise


async def submit(group: Group, prepare: Callable[[], Any]) -> Any:
    """``group.run(work, key=key, together=together)``, ``prepare()`` giving the three on the
    leader's thread, without a thread waiting for it: queued to the group commit from the event
    loop, answered by its batch's leader (one ``call_soon_threadsafe``), with the same guarantees
    (its own result once committed, or its own error, ``prepare``'s included). A cancelled caller
    (its client gone) is cancelled as :meth:`Handoff.run`'s."""
    submitted = _Submitted(asyncio.get_running_loop())
    member = group.submit(prepare, answer=submitted.answer)
    return await _outcome(submitted, lambda: group.withdraw(member))


_shared: Handoff | None = None


def shared() -> Handoff:
    """This process's hand-off for the writes (made on first use, in a worker: a process spawned
    later makes its own), with as many threads as anyio's default limiter allows the thread pool."""
    global _shared
    if _shared is None:
        _shared = Handoff(int(current_default_thread_limiter().total_tokens), name="write")
    return _shared
