"""Red flags: each indicator at its threshold, from compiled releases, for imported and natively
recorded tenders, per tender and in aggregate (SQLite and PostgreSQL)."""

from __future__ import annotations

import io
import json
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest

from demo import ocds as demo_ocds
from ledger.log import Log
from ledger.procurement import importer, ocds, organisations, redflags
from ledger.procurement.record import record
from tests.conftest import T0

from .helpers import AFTER_CLOSE, CHAIN_ID, at, bid, commitment, item, published


def test_the_catalogue_is_the_documented_one() -> None:
    assert [f.code for f in redflags.FLAGS] == [
        "single_bidder",
        "short_tender_period",
        "award_above_estimate",
        "contract_amended_soon_after_award",
        "repeat_supplier",
        "R003",
        "R018",
        "R028",
        "R030",
        "R035",
        "R036",
        "R044",
        "R024",
        "R058",
    ]
    assert all(f.title and f.description.endswith(".") for f in redflags.FLAGS)


def _compiled(
    *,
    tenderers: int = 3,
    method: str = "open",
    days: float = 30,
    awarded: float = 900,
    amended_after: float | None = None,
) -> dict[str, Any]:
    start = "2026-03-01T00:00:00+00:00"
    begin = datetime.fromisoformat(start)
    end = (begin + timedelta(days=days)).isoformat()
    awarded_at = begin + timedelta(days=40)
    contract: dict[str, Any] = {"id": "c1", "awardID": "a1", "dateSigned": (awarded_at + timedelta(days=2)).isoformat()}
    if amended_after is not None:
        contract["amendments"] = [{"id": "m1", "date": (awarded_at + timedelta(days=amended_after)).isoformat()}]
    return {
        "tender": {
            "procurementMethod": method,
            "numberOfTenderers": tenderers,
            "value": {"amount": 1000, "currency": "EUR"},
            "tenderPeriod": {"startDate": start, "endDate": end},
        },
        "awards": [
            {
                "id": "a1",
                "status": "active",
                "date": awarded_at.isoformat(),
                "value": {"amount": awarded, "currency": "EUR"},
            }
        ],
        "contracts": [contract],
    }


@pytest.mark.parametrize(
    ("kw", "raised"),
    [
        ({}, {}),
        ({"tenderers": 1}, {"single_bidder": {"tenderers": 1, "procurementMethod": "open"}}),
        ({"tenderers": 1, "method": "direct"}, {}),  # a single bid is expected of a direct award
        ({"days": 14.5}, {"short_tender_period": {"days": 14.5, "threshold_days": 15}}),
        ({"days": 15}, {}),
        ({"awarded": 1000}, {}),
        (
            {"awarded": 1250},
            {"award_above_estimate": {"estimate": 1000.0, "awarded": 1250.0, "currency": "EUR", "ratio": 1.25}},
        ),
        (
            {"amended_after": 29},
            {
                "contract_amended_soon_after_award": {
                    "contract": "c1",
                    "award": "a1",
                    "days": 29.0,
                    "threshold_days": 30,
                }
            },
        ),
        ({"amended_after": 30}, {}),
    ],
)
def test_each_indicator_at_its_threshold(kw: dict[str, Any], raised: dict[str, Any]) -> None:
    found = redflags.evaluate(_compiled(**kw))
    assert {k: v for k, v in found.items() if k not in redflags.CARDINAL_TITLES} == raised
    # Cardinal's R018 and R003 (whole days) are stored beside them
    assert ("R018" in found) is ("single_bidder" in raised)
    assert ("R003" in found) is ("short_tender_period" in raised)


def test_other_currencies_and_cancelled_awards_do_not_count() -> None:
    compiled = _compiled(awarded=5000)
    compiled["awards"][0]["value"]["currency"] = "USD"
    assert redflags.evaluate(compiled) == {}
    compiled = _compiled(awarded=5000)
    compiled["awards"][0]["status"] = "cancelled"
    assert redflags.evaluate(compiled) == {}


def test_demo_data_counts_match_the_compiled_releases(log: Log) -> None:
    demo_ocds.import_demo(log, now=T0)
    package = demo_ocds.release_package()
    by_ocid: dict[str, list[dict[str, Any]]] = {}
    for release in package["releases"]:
        by_ocid.setdefault(release["ocid"], []).append(release)
    compiled = {ocid: ocds.compiled_release(releases) for ocid, releases in by_ocid.items()}
    expected = Counter(code for c in compiled.values() for code in redflags.evaluate(c))
    wins = Counter((organisations.buyer_key(c), key) for c in compiled.values() for key in redflags.suppliers(c))
    repeated = {
        ocid
        for ocid, c in compiled.items()
        if any(wins[(organisations.buyer_key(c), n)] >= 3 for n in redflags.suppliers(c))
    }
    counts = redflags.flag_counts(log.engine)
    assert counts == {**dict.fromkeys(redflags.CODES, 0), **expected, "repeat_supplier": len(repeated)}
    # the demo shows every indicator of the first catalogue (it publishes no bid details: R028,
    # R030, R035, R036 need them)
    assert all(counts[code] > 0 for code in redflags.CODES[:5])
    for ocid in sorted(compiled)[:40]:
        flags = redflags.tender_flags(log.engine, ocid)
        assert [f["code"] for f in flags if f["code"] != "repeat_supplier"] == [
            code for code in redflags.CODES if code in redflags.evaluate(compiled[ocid])
        ]
        assert ("repeat_supplier" in [f["code"] for f in flags]) is (ocid in repeated)
    assert redflags.tender_flags(log.engine, "ocds-abc123-unknown") == []


def test_natively_recorded_tenders_raise_flags_from_their_rules_state(log: Log) -> None:
    b1, s1 = bid(1, 900.0)
    ocid = "ocds-tptest-flags"
    steps = [
        (
            "tender.published",
            published(
                amount=500.0, tenderPeriod={"startDate": "2026-03-20T00:00:00Z", "endDate": "2026-03-30T23:59:59Z"}
            ),
            at(17),
        ),
        ("bid.committed", {"bidder": b1["tenderers"][0], "commitment": commitment(b1, s1)}, at(20)),
        ("bid.revealed", {"bid": b1, "salt": s1}, AFTER_CLOSE),
        ("award.issued", {"award": {"id": "a1", "suppliers": b1["tenderers"], "value": b1["value"]}}, at(35)),
        ("contract.signed", {"contract": {"id": "c1", "awardID": "a1", "value": b1["value"]}}, at(40)),
        (
            "contract.amended",
            {"contract": {"id": "c1", "value": {"amount": 990.0, "currency": "EUR"}, "amendments": [{"id": "m1"}]}},
            at(45),
        ),
    ]
    for kind, payload, moment in steps:
        record(log, [item(kind, payload, ocid=ocid)], now=moment, signatures="optional", chain_id=CHAIN_ID)
    flags = {f["code"]: f["evidence"] for f in redflags.tender_flags(log.engine, ocid)}
    assert flags.pop("R018")["numberOfTenderers"] == 1 and flags.pop("R003")["days"] == 10  # whole days
    assert flags == {
        "single_bidder": {"tenderers": 1, "procurementMethod": "open"},
        "short_tender_period": {"days": 11.0, "threshold_days": 15},
        "award_above_estimate": {"estimate": 500.0, "awarded": 900.0, "currency": "EUR", "ratio": 1.8},
        "contract_amended_soon_after_award": {"contract": "c1", "award": "a1", "days": 10.0, "threshold_days": 30},
    }
    assert redflags.flag_counts(log.engine) == {
        "single_bidder": 1,
        "short_tender_period": 1,
        "award_above_estimate": 1,
        "contract_amended_soon_after_award": 1,
        "repeat_supplier": 0,
        **dict.fromkeys(redflags.CARDINAL_TITLES, 0),
        "R024": 0,
        "R058": 0,
        "R003": 1,
        "R018": 1,
    }


# --- organisations by identifier (issue 18) --------------------------------------------------


def _uk_release(ocid: str, buyer: str, supplier: dict[str, Any]) -> dict[str, Any]:
    """A release as the UK's Find a Tender publishes it: every buyer's party id is "1"."""
    return {
        "ocid": ocid,
        "id": f"{ocid}-award",
        "date": "2026-01-01T00:00:00Z",
        "tag": ["award"],
        "initiationType": "tender",
        "parties": [
            {"id": "1", "name": buyer, "roles": ["buyer"], "identifier": {"scheme": "GB-PPON", "id": "1"}},
            {"id": "2", "name": supplier["name"], "roles": ["supplier"], "identifier": supplier.get("identifier")},
        ],
        "buyer": {"id": "1", "name": buyer},
        "awards": [{"id": "a", "status": "active", "suppliers": [{"id": "2", "name": supplier["name"]}]}],
    }


def test_a_placeholder_identifier_does_not_make_three_councils_one_buyer(log: Log) -> None:
    supplier = {"name": "Acme Ltd", "identifier": {"scheme": "GB-COH", "id": "01234567"}}
    councils = ["Leeds City Council", "Bristol City Council", "Kent County Council"]
    body = {"releases": [_uk_release(f"ocds-abc123-uk{i}", name, supplier) for i, name in enumerate(councils)]}
    importer.import_files(log, [("uk.json", io.BytesIO(json.dumps(body).encode()))], now=T0)
    assert redflags.flag_counts(log.engine)["repeat_supplier"] == 0
    # the same council three times is a repeat, whatever its placeholder id
    body = {"releases": [_uk_release(f"ocds-abc123-ld{i}", "LEEDS  City Council", supplier) for i in range(2)]}
    importer.import_files(log, [("leeds.json", io.BytesIO(json.dumps(body).encode()))], now=T0)
    assert redflags.flag_counts(log.engine)["repeat_supplier"] == 3
    [flag] = [f for f in redflags.tender_flags(log.engine, "ocds-abc123-uk0") if f["code"] == "repeat_supplier"]
    assert flag["evidence"]["buyer_id"] == "name:leeds city council"
    assert flag["evidence"]["suppliers"] == [{"supplier": "GB-COH/01234567", "wins": 3}]


def test_suppliers_are_one_by_identifier_whatever_their_names_spelling() -> None:
    one = {"name": "Acme Ltd", "identifier": {"scheme": "GB-COH", "id": "01234567"}}
    other_spelling = {"name": "ACME LIMITED", "identifier": {"scheme": "GB-COH", "id": "01234567"}}
    keys = {redflags.suppliers(_uk_release("ocds-abc123-x", "B", s))[0] for s in (one, other_spelling)}
    assert keys == {"GB-COH/01234567"}
    # no identifier: the normalised name, accents and punctuation aside
    plain = [{"name": "Construcción Pérez, S.A."}, {"name": "construccion perez s a"}]
    assert {redflags.suppliers(_uk_release("ocds-abc123-x", "B", s))[0] for s in plain} == {
        "name:construccion perez s a"
    }
    # placeholders are not identities
    for value in ("1", "0", "n/a", "", None, "00"):
        assert not organisations.trusted_identifier(value), value
    assert organisations.trusted_identifier("01234567") and organisations.trusted_identifier("B12345678")


def test_an_identifier_carried_by_differently_named_parties_of_one_release_is_not_trusted() -> None:
    compiled = {
        "parties": [
            {"id": "a", "name": "North Ltd", "identifier": {"scheme": "XX-REG", "id": "777"}},
            {"id": "b", "name": "South Ltd", "identifier": {"scheme": "XX-REG", "id": "777"}},
        ],
        "awards": [{"id": "x", "status": "active", "suppliers": [{"id": "a"}, {"id": "b"}]}],
    }
    assert redflags.suppliers(compiled) == ["name:north ltd", "name:south ltd"]


def test_a_zero_length_tender_period_is_short() -> None:
    moment = "2026-03-15T10:00:00Z"
    compiled = {"tender": {"tenderPeriod": {"startDate": moment, "endDate": moment}}}
    assert redflags.evaluate(compiled)["short_tender_period"]["days"] == 0


def _release(ocid: str, method: str, **extra: Any) -> dict[str, Any]:
    return {
        "ocid": ocid,
        "id": f"{ocid}-1",
        "date": "2026-03-01T00:00:00Z",
        "tag": ["award"],
        "initiationType": "tender",
        "parties": [
            {
                "id": "B",
                "name": "City Council",
                "roles": ["buyer"],
                "identifier": {"scheme": "XX-CITY", "id": "770001"},
            },
            {"id": "S", "name": "Friend Ltd", "roles": ["supplier"], "identifier": {"scheme": "GB-COH", "id": "0950"}},
        ],
        "buyer": {"id": "B", "name": "City Council"},
        "tender": {"id": "t", "procurementMethod": method, "tenderPeriod": {"startDate": "2026-02-01T00:00:00Z"}},
        **extra,
    }


def _direct_award(ocid: str, amount: float) -> dict[str, Any]:
    award = {
        "id": "a1",
        "status": "active",
        "date": "2026-03-01T00:00:00Z",
        "suppliers": [{"id": "S", "name": "Friend Ltd"}],
        "value": {"amount": amount, "currency": "MXN"},
    }
    return _release(ocid, "direct", awards=[award])


def test_ledger_wide_flags_are_stored_by_the_import_with_their_evidence(log: Log) -> None:
    """R055 over imported data: stored per buyer and tenderer at the end of the import, read per
    organisation and per tender party, downloadable with the log indices of the entries read."""
    open_tender = _release("ocds-abc123-open", "open")
    open_tender["tender"]["value"] = {"amount": 10_000, "currency": "MXN"}
    releases = [open_tender, _direct_award("ocds-abc123-d1", 6_000), _direct_award("ocds-abc123-d2", 5_000)]
    package = {"uri": "u", "publishedDate": "2026-03-02T00:00:00Z", "version": "1.1", "releases": releases}
    importer.import_files(log, [("p.json", io.BytesIO(json.dumps(package).encode()))], now=T0)
    buyer = redflags.organisation_flags(log.engine, "XX-CITY/770001")
    assert [(f["role"], f["code"]) for f in buyer] == [("buyer", "R055")]
    evidence = buyer[0]["evidence"]
    assert evidence["minimum_amount"] == 10_000 and evidence["rule_version"] == redflags.cardinal.RULE_VERSION
    assert evidence["pairs"] == [
        {"with": "GB-COH/0950", "as": "buyer", "total": 11_000, "ocids": ["ocds-abc123-d1", "ocds-abc123-d2"]}
    ]
    assert evidence["settings"] == redflags.CARDINAL_SETTINGS.digest()
    assert redflags.organisation_flags(log.engine, "GB-COH/0950", role="buyer") == []
    assert [f["code"] for f in redflags.organisation_flags(log.engine, "GB-COH/0950", role="tenderer")] == ["R055"]
    counts = redflags.organisation_flag_counts(log.engine)
    assert counts["buyer"]["R055"] == 1 and counts["tenderer"]["R055"] == 1 and counts["tenderer"]["R048"] == 0
    # the tender page's parties: the buyer and the supplier of this tender, named as published here
    parties = redflags.tender_party_flags(log.engine, "ocds-abc123-d1")
    assert sorted((p["role"], p["name"], p["code"]) for p in parties) == [
        ("buyer", "City Council", "R055"),
        ("tenderer", "Friend Ltd", "R055"),
    ]
    assert redflags.tender_party_flags(log.engine, "ocds-abc123-unknown") == []
    # the download: before integration the entries read are pending, after it they have log indices
    document = redflags.evidence_document(log.engine, organisation="XX-CITY/770001")
    assert document["version"] == redflags.EVIDENCE_VERSION and document["flags"] == buyer
    assert document["entries"]["ocds-abc123-d1"] == {"log_indices": [], "pending": 1}
    log.integrate_all(now=T0)
    document = redflags.evidence_document(log.engine, organisation="XX-CITY/770001")
    indices = [i for e in document["entries"].values() for i in e["log_indices"]]
    assert sorted(document["entries"]) == ["ocds-abc123-d1", "ocds-abc123-d2"] and len(set(indices)) == 2
    assert "not proof" in document["note"]["en"] and document["settings"]["digest"] == evidence["settings"]
    with pytest.raises(redflags.InvalidArgumentError, match="role"):
        redflags.organisation_flags(log.engine, "XX-CITY/770001", role="mayor")


def test_the_deployments_thresholds_change_what_is_flagged(log: Log, tmp_path: Any) -> None:
    settings_file = tmp_path / "redflags.ini"
    settings_file.write_text("[R003.procurement_method]\nlimited = 3\n[R055]\nthreshold = 50000\n")
    try:
        redflags.configure_file(settings_file)
        quick = _release("ocds-abc123-quick", "limited")
        quick["tender"]["tenderPeriod"] = {"startDate": "2026-02-01T00:00:00Z", "endDate": "2026-02-05T00:00:00Z"}
        releases = [quick, _direct_award("ocds-abc123-d1", 6_000)]
        package = {"uri": "u", "publishedDate": "2026-03-02T00:00:00Z", "version": "1.1", "releases": releases}
        importer.import_files(log, [("p.json", io.BytesIO(json.dumps(package).encode()))], now=T0)
        # 4 days: short by default (15), not for a limited procedure here (3)
        assert redflags.tender_flags(log.engine, "ocds-abc123-quick") == []
        assert redflags.organisation_flags(log.engine, "XX-CITY/770001") == []  # 6,000 < the minimum of 50,000
        redflags.configure_file(None)
        assert redflags.refresh_ledger_flags(log.engine, now=T0) == {}  # no open tender: no minimum
        settings_file.write_text("[R055]\nthreshold = 5000\n")
        redflags.configure_file(settings_file)
        assert redflags.refresh_ledger_flags(log.engine, now=T0) == {"buyer": {"R055": 1}, "tenderer": {"R055": 1}}
        settings_file.write_text("[R055]\nthreshold = lots\n")
        with pytest.raises(redflags.InvalidArgumentError, match=r"TENDERPROOF_REDFLAGS_SETTINGS.*threshold"):
            redflags.configure_file(settings_file)
    finally:
        redflags.configure_file(None)


def test_the_command_line_refreshes_with_the_deployments_thresholds(
    log: Log, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cli import main
    from tests.conftest import ORIGIN

    quick = _release("ocds-abc123-quick", "limited")
    quick["tender"]["tenderPeriod"] = {"startDate": "2026-02-01T00:00:00Z", "endDate": "2026-02-05T00:00:00Z"}
    package = {"uri": "u", "publishedDate": "2026-03-02T00:00:00Z", "version": "1.1", "releases": [quick]}
    importer.import_files(log, [("p.json", io.BytesIO(json.dumps(package).encode()))], now=T0)
    assert {f["code"] for f in redflags.tender_flags(log.engine, "ocds-abc123-quick")} == {
        "short_tender_period",
        "R003",
    }
    settings_file = tmp_path / "redflags.ini"
    settings_file.write_text("[R003.procurement_method]\nlimited = 3\n")
    monkeypatch.setenv("TENDERPROOF_REDFLAGS_SETTINGS", str(settings_file))
    try:
        url = log.engine.url.render_as_string(hide_password=False)
        code = main(["--database-url", url, "--origin", ORIGIN, "redflags", "refresh", "--tenders", "--json"])
        out, err = capsys.readouterr()
        assert code == 0, err
        assert json.loads(out) == {} and "1 tenders' own flags recomputed" in err
        assert redflags.tender_flags(log.engine, "ocds-abc123-quick") == []
        code = main(["--database-url", url, "--origin", ORIGIN, "redflags", "evidence", "--ocid", "ocds-abc123-quick"])
        out, err = capsys.readouterr()
        document = json.loads(out)
        assert (
            code == 0 and document["flags"] == [] and document["settings"]["values"]["r003_by_method"] == {"limited": 3}
        )
        settings_file.write_text("[R003]\nthreshold = soon\n")
        code = main(["--database-url", url, "--origin", ORIGIN, "redflags", "refresh"])
        assert code == 2 and "TENDERPROOF_REDFLAGS_SETTINGS" in capsys.readouterr().err
    finally:
        redflags.configure_file(None)


def test_organisation_keys_follow_each_release_asked_about() -> None:
    """The party index is reused while the same release is asked about again, never for another
    release nor once parties were added to it."""
    first = {"parties": [{"id": "1", "name": "Acme", "identifier": {"scheme": "GB-COH", "id": "0950"}}]}
    second = {"parties": [{"id": "1", "name": "Other Ltd", "identifier": {"scheme": "GB-COH", "id": "7777"}}]}
    assert organisations.keys_of(first, [{"id": "1"}]) == ["GB-COH/0950"]
    assert organisations.keys_of(second, [{"id": "1"}]) == ["GB-COH/7777"]
    assert organisations.keys_of(first, [{"id": "1"}]) == ["GB-COH/0950"]
    # a second party sharing the identifier under another name: the identifier is no identity any more
    first["parties"].append({"id": "2", "name": "Not Acme", "identifier": {"scheme": "GB-COH", "id": "0950"}})
    assert organisations.keys_of(first, [{"id": "1"}, {"id": "2"}]) == ["name:acme", "name:not acme"]
    assert organisations.key_each(first, [{"id": "2"}, {"name": "Nobody"}, {}]) == [
        "name:not acme",
        "name:nobody",
        None,
    ]


def _generated_releases(count: int, seed: int = 5) -> list[dict[str, Any]]:
    """Releases with bids, awards, tenderers with addresses, two currencies: flags of every kind."""
    import random

    rng = random.Random(seed)
    out = []
    for i in range(count):
        currency = "MXN" if rng.random() < 0.85 else "USD"
        method = rng.choice(["open", "selective", "direct"])
        bids, parties = [], [{"id": "B", "name": f"Buyer {i % 7}", "roles": ["buyer"]}]
        for b in range(rng.randint(1, 4)):
            n = rng.randint(1, 25)
            parties.append(
                {
                    "id": f"T{n}",
                    "name": f"Tenderer {n}",
                    "roles": ["tenderer"],
                    "address": {"streetAddress": f"{n % 9}"},
                }
            )
            amount = float(rng.choice([100, 100, 105, 110, 150, 300]))
            bids.append(
                {
                    "id": f"b{b}",
                    "status": rng.choice(["valid", "valid", "disqualified"]),
                    "value": {"amount": amount, "currency": currency},
                    "tenderers": [{"id": f"T{n}", "name": f"Tenderer {n}"}],
                }
            )
        valid = [b for b in bids if b["status"] == "valid"] or bids
        winner = min(valid, key=lambda b: b["value"]["amount"])
        items = [{"id": "1", "classification": {"scheme": "UNSPSC", "id": f"{rng.randint(10, 30)}101500"}}]
        award = {"id": "a", "status": "active", "date": "2026-03-01T00:00:00Z", "value": winner["value"]}
        award |= {"suppliers": winner["tenderers"], "items": items}
        out.append(
            _release(
                f"ocds-abc123-g{i:04d}",
                method,
                parties=parties,
                buyer={"id": "B", "name": f"Buyer {i % 7}"},
                bids={"details": bids},
                awards=[award],
            )
        )
        out[-1]["tender"]["value"] = {"amount": float(rng.choice([120, 400, 1000])), "currency": currency}
    return out


def test_the_process_pool_stores_exactly_the_flags_of_one_process(log: Log, capsys: pytest.CaptureFixture[str]) -> None:
    """The ledger-wide flags computed by worker processes over ocid ranges of the ledger are the
    ones one process computes, on real published data and generated tenders."""
    from pathlib import Path

    from cli import main
    from tests.conftest import ORIGIN

    for fixture in ("cdmx-uppercase-ocid.json", "mexico-federal-record-package.json", "ocp-fictional-sample.json"):
        with (Path(__file__).parent.parent / "assets" / "ocds" / fixture).open("rb") as stream:
            importer.import_files(log, [(fixture, stream)], now=T0)
    package = {"uri": "u", "publishedDate": "2026-03-02T00:00:00Z", "version": "1.1"}
    package["releases"] = _generated_releases(240)
    importer.import_files(log, [("g.json", io.BytesIO(json.dumps(package).encode()))], now=T0)
    assert len(redflags._partitions(log.engine, 2)) == 4  # four ocid ranges, two per worker

    def stored() -> list[tuple[Any, ...]]:
        f = redflags.ledger_flags.c
        with log.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(redflags.select(f.role, f.subject, f.code, f.evidence))]

    one = redflags.refresh_ledger_flags(log.engine, now=T0, workers=1)
    alone = stored()
    assert redflags.refresh_ledger_flags(log.engine, now=T0, workers=2) == one
    assert stored() == alone  # the same rows, evidence byte for byte, in the same order
    # flags to compare, per process and per organisation (not two empty results)
    assert one["contracting_process"]["R058"] and one["tenderer"]["R044"] and one["tenderer"]["R025"], one
    # each tender's own flags counted in the same pass, alike in one process and in two
    settings = redflags.CARDINAL_SETTINGS
    own = redflags.ledger_pass(log.engine, settings, workers=2, own=True)[1]
    assert own == redflags.ledger_pass(log.engine, settings, workers=1, own=True)[1]
    stored_own = {code: n for code, n in redflags.flag_counts(log.engine).items() if n}
    del stored_own["R058"], stored_own["repeat_supplier"]  # over the ledger, not a tender's own
    assert own == stored_own and own["R044"] and own["R003"]  # what the import stored per tender
    # the command line's --workers
    url = log.engine.url.render_as_string(hide_password=False)
    code = main(["--database-url", url, "--origin", ORIGIN, "redflags", "refresh", "--workers", "2", "--json"])
    out, err = capsys.readouterr()
    assert code == 0 and json.loads(out) == one and stored() == alone, err
    code = main(["--database-url", url, "--origin", ORIGIN, "redflags", "refresh", "--workers", "0"])
    assert code == 2 and "--workers" in capsys.readouterr().err


def test_the_rows_stored_for_a_tender_read_back_as_computed(log: Log) -> None:
    """What the write path compares tenders' new rows with (``stored_rows_of``: flags, pairs and
    parties in one statement) is exactly what ``store_rows`` wrote, and a row that moved shows."""
    from sqlalchemy import select, update

    from ledger.store.schema import tender_flags, tender_index

    demo_ocds.import_demo(log, now=T0)
    package = demo_ocds.release_package()
    by_ocid: dict[str, list[dict[str, Any]]] = {}
    for release in package["releases"]:
        by_ocid.setdefault(release["ocid"], []).append(release)
    ocids = sorted(by_ocid)[:30]
    with log.engine.begin() as conn:
        buyers = dict(conn.execute(select(tender_index.c.ocid, tender_index.c.buyer_id)).all())
        rows = [redflags.rows_of(o, buyers[o], ocds.compiled_release(by_ocid[o])) for o in ocids]
        redflags.store_rows(conn, ocids, rows)
    assert any(r.flags for r in rows) and any(r.pairs for r in rows) and all(r.parties for r in rows)
    with log.engine.connect() as conn:
        held = redflags.stored_rows_of(conn, ocids)
    assert list(held) == ocids
    for ocid, computed in zip(ocids, rows, strict=True):
        assert held[ocid] == redflags.row_sets(computed), ocid
    flagged = next(o for o, r in zip(ocids, rows, strict=True) if r.flags)
    with log.engine.begin() as conn:
        conn.execute(update(tender_flags).where(tender_flags.c.ocid == flagged).values(evidence="{}"))
        moved = redflags.stored_rows_of(conn, [flagged, ocids[0]])
    assert moved[flagged][1:] == redflags.row_sets(rows[ocids.index(flagged)])[1:]
    assert moved[flagged][0] != redflags.row_sets(rows[ocids.index(flagged)])[0]
    assert flagged == ocids[0] or moved[ocids[0]] == redflags.row_sets(rows[0])
    with log.engine.connect() as conn:
        assert redflags.stored_rows_of(conn, ["ocds-abc123-unknown"]) == {"ocds-abc123-unknown": (frozenset(),) * 3}
        assert redflags.stored_rows_of(conn, []) == {}
