"""The monitor's HTTP client: patient with a rate limit, retrying a truncated or failing answer,
and giving up with a clear error when the deployment keeps failing."""

from __future__ import annotations

import httpx
import pytest

from monitor.follow import Api, MonitorError


def _api(answers: list[httpx.Response]) -> tuple[Api, list[str]]:
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return answers.pop(0) if len(answers) > 1 else answers[0]

    return Api("http://log.test", client=httpx.Client(transport=httpx.MockTransport(handler))), asked


def test_waits_out_429_as_told_and_retries_truncated_answers() -> None:
    page = {"start": 0, "end": 0, "entries": []}
    api, asked = _api(
        [
            httpx.Response(429, headers={"Retry-After": "0.1"}),
            httpx.Response(429, headers={"Retry-After": "0.1"}),
            httpx.Response(200, content=b'{"start": 0, "end"'),  # truncated
            httpx.Response(503),
            httpx.Response(200, json=page),
        ]
    )
    assert api.entries(0, 10) == page
    assert len(asked) == 5


def test_gives_up_naming_the_url_and_the_last_failure() -> None:
    api, asked = _api([httpx.Response(502)])
    with pytest.raises(MonitorError, match=r"/api/v1/entries: no usable answer after 6 tries \(HTTP 502\)"):
        api.entries(0, 10)
    assert len(asked) == 6
