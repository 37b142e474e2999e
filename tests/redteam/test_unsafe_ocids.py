"""Red team, identifiers in URLs (issue 16): an ocid that would break a path or a link.

`ocds-tp0dem-2026-0001/events` was accepted as a new tender and its Location served another
tender's events; now characters that break paths are refused (docs/spec.md §2.2), and the
characters an ocid may still hold (``<``, ``>``, ``&``, a space, ``"``) are encoded in every link
the explorer builds, which leads back to the same tender."""

from __future__ import annotations

import io
import json
import re
from urllib.parse import quote, unquote

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.core.envelope import check_ocid
from ledger.core.errors import InvalidArgumentError
from ledger.log import Log
from ledger.procurement.importer import import_files
from settings import ChainSettings, Settings
from settings.runtime import bound_recursion
from tests.conftest import ORIGIN, T0

CHAIN = ChainSettings(name="dev", rpc_url="embedded", confirmations=1)
ODD = 'ocds-abc123-a<b>&c "d" e+f'


def _release(ocid: str) -> bytes:
    release = {
        "ocid": ocid,
        "id": "r-1",
        "date": "2026-01-01T00:00:00Z",
        "tag": ["tender"],
        "initiationType": "tender",
        "tender": {"id": "t-1", "title": "Odd identifiers"},
    }
    return json.dumps({"releases": [release]}).encode()


@pytest.mark.parametrize(
    "ocid", ["ocds-tp0dem-2026-0001/events", "ocds-tp0dem-a?b", "ocds-tp0dem-a#b", "ocds-tp0dem-a%2F"]
)
def test_path_breaking_ocids_are_refused(ocid: str, log: Log) -> None:
    with pytest.raises(InvalidArgumentError, match="none of / "):
        check_ocid(ocid)
    report = import_files(log, [("odd.json", io.BytesIO(_release(ocid)))], now=T0)
    assert report.imported == 0 and report.invalid == 1


def test_links_to_odd_ocids_are_encoded_and_lead_back(sqlite_url: str) -> None:
    bound_recursion()
    log = Log.open(sqlite_url, origin=ORIGIN)
    report = import_files(log, [("odd.json", io.BytesIO(_release(ODD)))], now=T0)
    assert report.imported == 1, report.problems
    log.integrate_all(now=T0)
    app = create_app(Settings(database_url=sqlite_url, origin=ORIGIN, chains=[CHAIN], rate_limit=None), log=log)
    encoded = quote(ODD, safe="")
    with TestClient(app) as client:
        listing = client.get("/tenders")
        assert listing.status_code == 200
        links = re.findall(r'href="(/tenders/[^"]+)"', listing.text)
        assert f"/tenders/{encoded}" in links, links
        assert not any(ODD in link for link in links)  # never raw
        page = client.get(f"/tenders/{encoded}")
        assert page.status_code == 200
        for href in re.findall(r'href="([^"]*abc123[^"]*)"', page.text):
            assert "<" not in href and " " not in href and '"' not in href, href
            path = href.split("?")[0]
            if path.startswith("/api/v1/tenders/"):
                assert unquote(path.split("/")[4]) == ODD
                answer = client.get(href.replace("&amp;", "&"))
                # The tender is found (its bundle: nothing anchored yet on this test's chain).
                assert answer.status_code == 200 or "nothing anchored" in answer.text, (href, answer.text[:200])
        events = client.get(f"/api/v1/tenders/{encoded}/events")
        assert events.status_code == 200 and events.json()["ocid"] == ODD
