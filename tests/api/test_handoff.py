"""api.handoff: the thin write path's one hand-off to a thread gives what Starlette's
``run_in_threadpool`` gives (result, exception, context, a bound on threads) and, as anyio's
hand-off, never leaves a function running behind a cancelled caller."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from typing import Any

import pytest

from api.handoff import Handoff, submit

REQUEST = contextvars.ContextVar("request", default="none")


def test_result_exception_and_context() -> None:
    pool = Handoff(4)

    def work(a: int, b: int) -> tuple[int, str, str]:
        return a + b, REQUEST.get(), threading.current_thread().name

    def refuse() -> None:
        raise LookupError("refused")

    async def main() -> None:
        REQUEST.set("r1")
        total, seen, thread = await pool.run(work, {"a": 2, "b": 3})
        assert (total, seen) == (5, "r1")
        assert thread != threading.current_thread().name and thread.startswith("handoff-")
        with pytest.raises(LookupError, match="refused"):
            await pool.run(refuse, {})

    asyncio.run(main())


def test_at_most_size_at_once_and_the_rest_wait() -> None:
    pool = Handoff(3)
    lock = threading.Lock()
    running = [0, 0]  # now, most

    def work(i: int) -> int:
        with lock:
            running[0] += 1
            running[1] = max(running[1], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1
        return i

    async def main() -> list[int]:
        return list(await asyncio.gather(*(pool.run(work, {"i": i}) for i in range(12))))

    assert asyncio.run(main()) == list(range(12))
    assert running[1] == 3
    assert pool.threads == 3


def test_threads_are_reused() -> None:
    pool = Handoff(8)

    async def main() -> None:
        for i in range(50):
            assert await pool.run(lambda i: i, {"i": i}) == i

    asyncio.run(main())
    assert pool.threads == 1  # one caller at a time: one thread, taken again each time


def test_a_cancelled_caller_waits_for_its_running_function() -> None:
    pool = Handoff(2)
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    def work() -> str:
        started.set()
        release.wait(5)
        finished.set()
        return "done"

    async def main() -> None:
        task = asyncio.create_task(pool.run(work, {}))
        await asyncio.to_thread(started.wait, 5)
        task.cancel()
        await asyncio.sleep(0.05)
        assert not task.done()  # still waiting for the function, as anyio's hand-off does
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert finished.is_set()

    asyncio.run(main())


def test_a_caller_cancelled_before_a_thread_took_its_call_never_runs_it() -> None:
    pool = Handoff(1)
    started, release = threading.Event(), threading.Event()
    ran: list[str] = []

    def busy() -> None:
        started.set()
        release.wait(5)

    def queued() -> None:
        ran.append("queued")

    async def main() -> None:
        first = asyncio.create_task(pool.run(busy, {}))
        await asyncio.to_thread(started.wait, 5)
        second = asyncio.create_task(pool.run(queued, {}))
        await asyncio.sleep(0.01)
        second.cancel()
        await asyncio.sleep(0.01)
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await second
        await first
        assert await pool.run(lambda: "after", {}) == "after"  # the thread serves on

    asyncio.run(main())
    assert ran == []


def test_a_caller_cancelled_once_its_answer_is_on_the_way_is_not_left_waiting() -> None:
    """The function has returned and its answer is queued on the loop when the caller is
    cancelled (the answer runs first and finds the caller's future cancelled): the caller is
    cancelled at once, not left waiting for an answer that already came."""
    pool = Handoff(1)
    done = threading.Event()

    def work() -> str:
        done.set()
        return "done"

    async def main() -> None:
        task = asyncio.create_task(pool.run(work, {}))
        await asyncio.sleep(0)  # the task hands the call off and awaits its future
        assert done.wait(5)
        time.sleep(0.05)  # the loop is held: the thread's answer is queued behind this callback
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(task), 2)
        assert task.cancelled()

    asyncio.run(main())


def test_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="size"):
        Handoff(0)


class _Group:
    """A group commit as :func:`api.handoff.submit` sees it: members taken by the test."""

    def __init__(self) -> None:
        self.members: list[list[Any]] = []  # [work, answer, taken]
        self.queued = threading.Event()

    def submit(self, prepare: Any, *, answer: Any) -> list[Any]:
        member = [prepare()[0], answer, False]
        self.members.append(member)
        self.queued.set()
        return member

    def withdraw(self, member: list[Any]) -> bool:
        if member[2]:
            return False
        self.members.remove(member)
        return True


def test_a_submitted_write_is_answered_by_its_leaders_thread() -> None:
    group = _Group()

    def lead() -> None:
        assert group.queued.wait(5)
        for work, answer, _ in list(group.members):
            answer(work(None), None)

    async def main() -> None:
        threading.Thread(target=lead).start()
        assert await submit(group, lambda: (lambda conn: "recorded", "k", None)) == "recorded"
        group.queued.clear()

        def refuse() -> None:
            assert group.queued.wait(5)
            group.members[-1][1](None, LookupError("x"))

        threading.Thread(target=refuse).start()
        with pytest.raises(LookupError):
            await submit(group, lambda: (lambda conn: None, "k", None))

    asyncio.run(main())


def test_a_cancelled_submitted_write_is_withdrawn_or_waited_for() -> None:
    group = _Group()

    async def main() -> None:
        # Not yet taken by a batch: withdrawn, the caller cancelled at once.
        task = asyncio.create_task(submit(group, lambda: (lambda conn: None, "a", None)))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert group.members == []
        # Taken: the caller is cancelled only once its batch has answered it.
        task = asyncio.create_task(submit(group, lambda: (lambda conn: None, "b", None)))
        await asyncio.sleep(0.01)
        group.members[0][2] = True
        task.cancel()
        await asyncio.sleep(0.05)
        assert not task.done()  # its write may still commit: waited for
        answer = group.members[0][1]
        threading.Timer(0.02, answer, (["done"], None)).start()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
