"""The explorer's figures cache (stale-while-revalidate), with a clock passed in."""

from __future__ import annotations

import threading

from explorer.pages import TtlCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_fresh_then_stale_while_revalidate() -> None:
    clock = Clock()
    cache = TtlCache(30.0, clock=clock)
    computed: list[int] = []
    release = threading.Event()

    def compute() -> int:
        computed.append(len(computed) + 1)
        if len(computed) > 1:
            release.wait(5)
        return computed[-1]

    assert cache.get("k", compute) == 1  # the first request computes
    clock.now = 29.0
    assert cache.get("k", compute) == 1 and computed == [1]  # fresh: not recomputed
    clock.now = 31.0
    assert cache.get("k", compute) == 1  # stale: served at once, one refresh started
    assert cache.get("k", compute) == 1  # while it runs, no second refresh
    release.set()
    for _ in range(100):
        if cache.get("k", lambda: -1) == 2:
            break
        threading.Event().wait(0.01)
    assert computed == [1, 2]
    assert cache.get("k", compute) == 2


def test_a_failed_refresh_keeps_the_stale_value() -> None:
    clock = Clock()
    cache = TtlCache(10.0, clock=clock)
    assert cache.get("k", lambda: "old") == "old"
    clock.now = 11.0
    done = threading.Event()

    def broken() -> str:
        done.set()
        raise RuntimeError("database gone")

    assert cache.get("k", broken) == "old"
    assert done.wait(5)
    for _ in range(100):  # the failed refresh is forgotten: the next request starts another
        if cache.get("k", lambda: "new") == "new":
            break
        threading.Event().wait(0.01)
    assert cache.get("k", lambda: "newer") == "new"


def test_zero_ttl_recomputes_every_time() -> None:
    cache = TtlCache(0.0, clock=Clock())
    values = iter(range(3))
    assert [cache.get("k", lambda: next(values)) for _ in range(3)] == [0, 1, 2]
