"""Cardinal's indicators (ledger.procurement.cardinal) on hand-made cases: flagged, not flagged,
missing data, each with its evidence (fields read, thresholds or fences, rule version)."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from ledger.procurement import cardinal


def _tender(**tender: Any) -> dict[str, Any]:
    return {"ocid": "ocds-abc123-c", "tender": tender}


def _period(days: float, **extra: Any) -> dict[str, Any]:
    from datetime import UTC, datetime, timedelta

    start = datetime(2026, 3, 15, tzinfo=UTC)
    end = start + timedelta(days=days)
    return _tender(tenderPeriod={"startDate": start.isoformat(), "endDate": end.isoformat()}, **extra)


def _bid(tenderer: str, status: str, amount: float | None = None) -> dict[str, Any]:
    bid: dict[str, Any] = {"id": tenderer + status, "status": status, "tenderers": [{"name": tenderer}]}
    if amount is not None:
        bid["value"] = {"amount": amount, "currency": "EUR"}
    return bid


def _with_bids(
    bids: list[dict[str, Any]], winner: str | None = "Winner", award_status: str = "active"
) -> dict[str, Any]:
    compiled: dict[str, Any] = {"ocid": "ocds-abc123-b", "bids": {"details": bids}, "buyer": {"name": "Buyer"}}
    if winner is not None:
        compiled["awards"] = [{"id": "a", "status": award_status, "suppliers": [{"name": winner}]}]
    return compiled


@pytest.mark.parametrize(
    ("compiled", "flagged"),
    [
        (_period(5), True),
        (_period(0), True),  # a zero-length period is the shortest of all
        (_period(14.9), True),  # 14 whole days
        (_period(15), False),
        (_tender(), False),  # missing data
        (_tender(tenderPeriod={"startDate": "2026-03-15T00:00:00Z"}), False),
    ],
)
def test_r003_short_submission_period(compiled: dict[str, Any], flagged: bool) -> None:
    found = cardinal.r003(compiled, cardinal.Settings())
    assert (found is not None) is flagged
    if found:
        assert found["threshold_days"] == 15 and found["rule_version"] == cardinal.RULE_VERSION
        assert "tender.tenderPeriod.endDate" in found["fields"]


def test_r003_threshold_per_procurement_method_details() -> None:
    """Price quotations are short by law (ProZorro: 'Cotización' / price quotation): 5 days is fine there."""
    settings = cardinal.Settings(r003_by_method_details={"Cotización": 4})
    assert cardinal.r003(_period(5, procurementMethodDetails="Cotización"), settings) is None
    assert cardinal.r003(_period(3, procurementMethodDetails="Cotización"), settings)["threshold_days"] == 4  # type: ignore[index]
    assert cardinal.r003(_period(5, procurementMethodDetails="Licitación"), settings) is not None
    only_open = cardinal.Settings(r003_procurement_methods=frozenset({"open"}))
    assert cardinal.r003(_period(5, procurementMethod="direct"), only_open) is None


@pytest.mark.parametrize(
    ("tender", "flagged"),
    [
        ({"procurementMethod": "open", "numberOfTenderers": 1}, True),
        ({"procurementMethod": "selective", "numberOfTenderers": 1}, True),
        ({"procurementMethod": "direct", "numberOfTenderers": 1}, False),
        ({"procurementMethod": "open", "numberOfTenderers": 2}, False),
        ({"procurementMethod": "open"}, False),  # missing data
    ],
)
def test_r018_single_bid(tender: dict[str, Any], flagged: bool) -> None:
    assert (cardinal.r018(_tender(**tender), cardinal.Settings()) is not None) is flagged


@pytest.mark.parametrize(
    ("compiled", "flagged"),
    [
        (_with_bids([_bid("Winner", "valid"), _bid("A", "disqualified"), _bid("B", "disqualified")]), True),
        (_with_bids([_bid("Winner", "valid"), _bid("A", "valid"), _bid("B", "disqualified")]), False),
        (_with_bids([_bid("Winner", "valid")]), False),  # nobody disqualified
        (_with_bids([_bid("Winner", "valid"), _bid("A", "disqualified")], winner="Other"), False),
        (_with_bids([_bid("Winner", "valid"), _bid("A", "disqualified")], award_status="pending"), False),
        (_with_bids([]), False),  # missing data
    ],
)
def test_r035_all_except_winning_bid_disqualified(compiled: dict[str, Any], flagged: bool) -> None:
    found = cardinal.r035(compiled, cardinal.Settings())
    assert (found is not None) is flagged
    if found:
        assert found["winner"] == "name:winner" and found["disqualified_tenderers"] == 2


@pytest.mark.parametrize(
    ("compiled", "flagged"),
    [
        (_with_bids([_bid("Fair", "disqualified", 100_000), _bid("Winner", "valid", 111_111)]), True),
        (
            _with_bids([_bid("Fair", "valid", 100_000), _bid("Winner", "disqualified", 90_000), _bid("W", "valid", 1)]),
            False,
        ),
        (_with_bids([_bid("Fair", "disqualified", 100_000), _bid("Winner", "valid", 111_111)], winner=None), False),
        (_with_bids([_bid("Fair", "disqualified"), _bid("Winner", "valid")]), False),  # missing amounts
    ],
)
def test_r036_lowest_bid_disqualified(compiled: dict[str, Any], flagged: bool) -> None:
    assert (cardinal.r036(compiled, cardinal.Settings()) is not None) is flagged


def test_r036_is_not_computed_where_prices_are_predetermined() -> None:
    compiled = _with_bids([_bid("Fair", "disqualified", 1), _bid("Winner", "valid", 2)])
    compiled["tender"] = {"procurementMethodDetails": "Precio fijo"}
    settings = cardinal.Settings(no_price_comparison_method_details=frozenset({"Precio fijo"}))
    assert cardinal.r036(compiled, settings) is None


def test_r038_fences_come_from_the_ledgers_own_ratios() -> None:
    releases = []
    # five buyers, two processes each, 4 bids per process; "Strict Buyer" disqualifies 3 of 4
    for b, disq in [("B1", 0), ("B2", 0), ("B3", 1), ("B4", 0), ("Strict Buyer", 3)]:
        for p in range(2):
            bids = [_bid(f"T{i}", "disqualified" if i < disq else "valid") for i in range(4)]
            compiled = _with_bids(bids)
            compiled["buyer"] = {"name": b}
            releases.append((f"ocds-abc123-{b}-{p}", compiled))
    found = cardinal.r038(releases)
    assert list(found["buyer"]) == ["name:strict buyer"]
    evidence = found["buyer"]["name:strict buyer"]
    ratios = sorted([0, 0, 0, 0.25, 0.75])
    assert evidence["upper_fence"] == round(cardinal.upper_fence(ratios) or 0, 6)
    assert evidence["ratio"] == 0.75 and evidence["submitted"] == 8 and evidence["disqualified"] == 6
    assert evidence["fence_from"].startswith("Q3 + 1.5 IQR")
    # the tenderers always disqualified are flagged as tenderers
    assert "name:t0" in found["tenderer"]
    # a fixed fence from the settings
    fixed = cardinal.r038(releases, cardinal.Settings(r038_threshold=0.2))
    assert set(fixed["buyer"]) == {"name:b3", "name:strict buyer"}
    assert cardinal.r038([]) == {}  # no data: nothing


def test_explanations_are_in_english_and_spanish_and_never_accuse() -> None:
    for code in [*cardinal.TENDER_INDICATORS, "R024", "R025", "R038", "R048", "R055", "R058"]:
        english, spanish = cardinal.EXPLANATIONS[code]
        assert english and spanish and english != spanish
        for word in ("fraud", "corrupt", "proof", "fraude", "corrup"):
            assert word not in english.lower() and word not in spanish.lower()
    assert "not proof" in cardinal.NOT_PROOF[0]


@pytest.mark.parametrize(
    ("bids", "flagged"),
    [
        ([_bid("A", "valid", 100), _bid("B", "valid", 100), _bid("Winner", "valid", 90)], True),
        ([_bid("A", "valid", 100), _bid("B", "valid", 101)], False),
        ([_bid("A", "valid", 100), _bid("A", "pending", 100)], False),  # one tenderer twice
        ([_bid("A", "valid"), _bid("B", "valid")], False),  # missing amounts
    ],
)
def test_r028_identical_bid_prices(bids: list[dict[str, Any]], flagged: bool) -> None:
    found = cardinal.r028(_with_bids(bids), cardinal.Settings())
    assert (found is not None) is flagged
    if found:
        assert found["prices"] == [{"amount": 100.0, "currency": "EUR", "tenderers": ["name:a", "name:b"]}]


def _late(received: str | None, status: str = "valid", winner: str = "Winner") -> dict[str, Any]:
    bid = _bid("Winner", status)
    if received:
        bid["date"] = received
    compiled = _with_bids([bid], winner=winner)
    compiled["tender"] = {"tenderPeriod": {"endDate": "2026-03-15T12:00:00Z"}}
    return compiled


@pytest.mark.parametrize(
    ("compiled", "flagged"),
    [
        (_late("2026-04-01T09:00:00Z"), True),
        (_late("2026-03-15T11:59:00Z"), False),
        (_late("2026-04-01T09:00:00Z", winner="Someone else"), False),
        (_late("2026-04-01T09:00:00Z", status="disqualified"), False),
        (_late(None), False),  # missing data
    ],
)
def test_r030_late_bid_won(compiled: dict[str, Any], flagged: bool) -> None:
    assert (cardinal.r030(compiled, cardinal.Settings()) is not None) is flagged


def _priced(ocid: str, winning: float, second: float) -> tuple[str, dict[str, Any]]:
    return ocid, _with_bids([_bid("Winner", "valid", winning), _bid(f"Other {ocid}", "valid", second)])


def test_r024_and_r058_fences_come_from_the_ledgers_own_differences() -> None:
    releases = [_priced(f"ocds-abc123-{i}", 100, 100 + d) for i, d in enumerate([5, 6, 6, 7, 7, 5, 6])]
    releases += [_priced("ocds-abc123-close", 100_000, 100_100), _priced("ocds-abc123-lemon", 100, 200)]
    releases += [("ocds-abc123-none", _with_bids([_bid("Winner", "valid", 100)]))]  # no second bid: excluded
    releases += [_priced("ocds-abc123-notlowest", 100, 90)]  # the winning bid is not the lowest: excluded
    found = cardinal.r024_r058(releases)
    assert list(found["R024"]) == ["ocds-abc123-close"] and list(found["R058"]) == ["ocds-abc123-lemon"]
    close = found["R024"]["ocds-abc123-close"]
    assert close["difference"] == 0.001 and close["winner"] == "name:winner" and "lower_fence" in close
    assert found["R058"]["ocds-abc123-lemon"]["difference"] == 1.0
    fixed = cardinal.r024_r058(releases, cardinal.Settings(r024_threshold=0.055, r058_threshold=0.5))
    assert set(fixed["R024"]) == {"ocds-abc123-0", "ocds-abc123-5", "ocds-abc123-close"}
    assert cardinal.r024_r058([]) == {"R024": {}, "R058": {}}


def test_r025_excessive_unsuccessful_bids() -> None:
    releases = []
    # "Loser" bids in 12 processes and wins 1; W0..W3 each bid 5-6 times and win 2-3
    for i in range(12):
        winner = "Loser" if i == 0 else f"W{i % 4}"
        bids = [_bid("Loser", "valid", 10), _bid(f"W{(i + 1) % 4}", "valid", 8)]
        if winner != "Loser":
            bids.append(_bid(winner, "valid", 5))
        releases.append((f"ocds-abc123-{i}", _with_bids(bids, winner=winner)))
    found = cardinal.r025(releases)
    assert list(found) == ["name:loser"]
    assert found["name:loser"]["valid_bids"] == 12 and found["name:loser"]["winning_bids"] == 1
    assert cardinal.r025([]) == {}


def _party(pid: str, name: str, **extra: Any) -> dict[str, Any]:
    return {"id": pid, "name": name, "roles": ["tenderer"], **extra}


@pytest.mark.parametrize(
    ("a", "b", "shared"),
    [
        # the same street address, written with other case and spaces
        (
            {"address": {"streetAddress": "Collusion Street 1", "countryName": "Atlantis"}},
            {"address": {"streetAddress": " collusion street 1", "countryName": "ATLANTIS "}},
            ["address"],
        ),
        # any contact point field: here the email only
        (
            {"contactPoint": {"name": "Ann", "email": "bids@example.com"}},
            {"contactPoint": {"name": "Bob", "email": "bids@example.com"}},
            ["contactPoint.email"],
        ),
        ({"address": {"streetAddress": "1 High St"}}, {"address": {"streetAddress": "2 High St"}}, None),
        ({"address": {"locality": "Town"}}, {"address": {"locality": "Town"}}, None),  # no street: not compared
        ({}, {}, None),  # missing data
    ],
)
def test_r044_business_similarities(a: dict[str, Any], b: dict[str, Any], shared: list[str] | None) -> None:
    compiled = {"ocid": "ocds-abc123-s", "parties": [_party("1", "Bribe Corp", **a), _party("2", "Another Corp", **b)]}
    found = cardinal.r044(compiled, cardinal.Settings())
    if shared is None:
        assert found is None
        return
    assert found is not None and found["rule_version"] == cardinal.RULE_VERSION
    assert found["pairs"] == [{"tenderers": ["name:another corp", "name:bribe corp"], "shared": shared}]
    # the tenderers are flagged too, with the processes
    per = cardinal.r044_tenderers([("ocds-abc123-s", compiled)])
    assert sorted(per) == ["name:another corp", "name:bribe corp"]
    assert per["name:bribe corp"]["ocids"] == ["ocds-abc123-s"] and per["name:bribe corp"]["similar_to"] == [
        "name:another corp"
    ]


def test_r044_reads_only_tenderers() -> None:
    same = {"address": {"streetAddress": "Main Street 1"}}
    compiled = {
        "parties": [_party("1", "A", **same), {"id": "2", "name": "Buyer", "roles": ["buyer"], **same}],
    }
    assert cardinal.r044(compiled, cardinal.Settings()) is None


def _awarded(ocid: str, supplier: str, codes: list[str], status: str = "active") -> tuple[str, dict[str, Any]]:
    items = [{"id": str(i), "classification": {"scheme": "UNSPSC", "id": code}} for i, code in enumerate(codes)]
    award = {"id": "a", "status": status, "suppliers": [{"name": supplier}], "items": items}
    return ocid, {"ocid": ocid, "awards": [award]}


def test_r048_heterogeneous_supplier_fence_from_the_data() -> None:
    releases = []
    varieties = {"S1": 1, "S2": 1, "S3": 2, "S4": 2, "S5": 2, "Wide": 9}
    for supplier, variety in varieties.items():
        for i in range(3):
            codes = [f"{(10 + k) * 1000000 + i}" for k in range(variety)]  # `variety` segments each time
            releases.append(_awarded(f"ocds-abc123-{supplier}-{i}", supplier, codes))
    releases.append(_awarded("ocds-abc123-x", "Wide", ["99000000"], status="pending"))  # not active: not read
    releases.append(("ocds-abc123-y", {"awards": [{"status": "active", "suppliers": [{"name": "S1"}]}]}))  # no items
    settings = cardinal.Settings(r048_minimum_contracting_processes=3)
    found = cardinal.r048(releases, settings)
    fence = cardinal.upper_fence([1, 1, 2, 2, 2, 9])
    assert fence is not None and 2 < fence < 9
    assert list(found) == ["name:wide"]
    evidence = found["name:wide"]
    assert evidence["variety"] == 9 and evidence["upper_fence"] == round(fence, 6)
    assert evidence["classification_prefixes"] == [str(10 + k) for k in range(9)]
    assert evidence["contracting_processes"] == 3 and evidence["digits"] == 2
    # Cardinal's default: only suppliers awarded in at least 20 processes count
    assert cardinal.r048(releases) == {}
    # a fixed fence from the settings
    assert sorted(
        cardinal.r048(releases, cardinal.Settings(r048_minimum_contracting_processes=1, r048_threshold=2))
    ) == [
        "name:s3",
        "name:s4",
        "name:s5",
        "name:wide",
    ]


def _process(
    ocid: str,
    method: str,
    *,
    estimate: float | None = None,
    awards: list[tuple[str, float, str]] = (),  # type: ignore[assignment]
    buyer: str = "City",
) -> tuple[str, dict[str, Any]]:
    tender: dict[str, Any] = {"procurementMethod": method, "tenderPeriod": {"startDate": "2026-02-01T00:00:00Z"}}
    if estimate is not None:
        tender["value"] = {"amount": estimate, "currency": "MXN"}
    return ocid, {
        "ocid": ocid,
        "buyer": {"name": buyer},
        "tender": tender,
        "awards": [
            {
                "id": f"a{i}",
                "status": "active",
                "date": "2026-03-01T00:00:00Z",
                "suppliers": [{"name": supplier}],
                "value": {"amount": amount, "currency": currency},
            }
            for i, (supplier, amount, currency) in enumerate(awards)
        ],
    }


def test_r055_awards_adding_up_past_the_smallest_open_tender() -> None:
    releases = [
        _process("ocds-abc123-o1", "open", estimate=10_000),
        _process("ocds-abc123-o2", "open", estimate=50_000),
        _process("ocds-abc123-d1", "direct", awards=[("Friend", 6_000, "MXN")]),
        _process("ocds-abc123-d2", "direct", awards=[("Friend", 4_000, "MXN")]),
        _process("ocds-abc123-d3", "direct", awards=[("Stranger", 9_000, "MXN")]),  # below 10,000: not flagged
        _process("ocds-abc123-d4", "direct", awards=[("Stranger", 5_000, "USD")]),  # another currency: not summed
        _process("ocds-abc123-d5", "open", awards=[("Big", 20_000, "MXN")]),  # an open procedure's award: not summed
    ]
    found = cardinal.r055(releases)
    assert sorted(found) == ["buyer", "tenderer"]
    assert list(found["buyer"]) == ["name:city"] and list(found["tenderer"]) == ["name:friend"]
    evidence = found["tenderer"]["name:friend"]
    assert evidence["minimum_amount"] == 10_000 and "ocds-abc123-o1" in evidence["minimum_from"]
    assert evidence["pairs"] == [
        {"with": "name:city", "as": "buyer", "total": 10_000, "ocids": ["ocds-abc123-d1", "ocds-abc123-d2"]}
    ]
    # every award summed, as Cardinal's draft does: the open procedure's supplier too
    every = cardinal.r055(releases, cardinal.Settings(r055_procurement_methods=frozenset()))
    assert sorted(every["tenderer"]) == ["name:big", "name:friend"]
    # a window that leaves the awards out; a fixed minimum
    assert cardinal.r055(releases, cardinal.Settings(r055_end_date="2026-02-15")) == {}
    assert sorted(cardinal.r055(releases, cardinal.Settings(r055_threshold=9_000))["tenderer"]) == [
        "name:friend",
        "name:stranger",
    ]
    # missing data: no open tender gives no minimum
    assert cardinal.r055(releases[2:4]) == {}


def test_organisation_indicators_gather_every_role() -> None:
    releases = [
        _process("ocds-abc123-o1", "open", estimate=1_000),
        _process("ocds-abc123-d1", "direct", awards=[("Friend", 6_000, "MXN")]),
    ]
    found = cardinal.organisation_indicators(releases)
    assert set(found) == set(cardinal.ROLES)
    assert found["buyer"]["name:city"]["R055"]["pairs"][0]["with"] == "name:friend"
    assert found["tenderer"]["name:friend"] == {"R055": found["tenderer"]["name:friend"]["R055"]}
    assert found["procuring_entity"] == {}


def test_settings_from_a_cardinal_settings_file() -> None:
    settings = cardinal.Settings.from_ini(
        "currency = MXN\n"
        "no_price_comparison_procurement_methods = Precio fijo|Catálogo\n"
        "[R003]\nthreshold = 10 ; days\nprocurement_methods = open|selective\n"
        "[R003.procurement_method_details]\nCotización = 4\nLicitación Pública = 20\n"
        "[R003.procurement_method]\nselective = 7\n"
        "[R038]\nminimum_submitted_bids = 3\n"
        "[R055]\nstart_date = 2026-01-01\nprocurement_methods = direct\n"
    )
    assert settings.r055_currency == "MXN" and settings.no_price_comparison_method_details == {
        "Precio fijo",
        "Catálogo",
    }
    assert settings.r003_threshold_days == 10 and settings.r003_procurement_methods == {"open", "selective"}
    assert settings.r003_by_method_details == {"Cotización": 4, "Licitación Pública": 20}
    assert settings.r038_minimum_submitted_bids == 3 and settings.r055_start_date == "2026-01-01"
    # the threshold: by details, else by method, else the deployment's
    assert (
        cardinal.r003_threshold({"procurementMethod": "selective", "procurementMethodDetails": "Cotización"}, settings)
        == 4
    )
    assert cardinal.r003_threshold({"procurementMethod": "selective"}, settings) == 7
    assert cardinal.r003_threshold({"procurementMethod": "open"}, settings) == 10
    assert cardinal.r003(_period(8, procurementMethod="selective"), settings) is None
    assert cardinal.r003(_period(8, procurementMethod="open"), settings)["threshold_days"] == 10  # type: ignore[index]
    assert settings.digest() != cardinal.Settings().digest() and len(settings.digest()) == 16
    assert cardinal.Settings.from_ini("") == cardinal.Settings()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[R003]\nthreshhold = 3\n", "[R003] threshhold: unknown key"),
        ("[R003]\nthreshold = soon\n", "[R003] threshold: expected a natural number, got 'soon'"),
        ("[R003]\nthreshold = -1\n", "expected a natural number"),
        ("[R999]\n", "[R999]: unknown section"),
        ("[R055]\nstart_date = 2026-13-01\n", "[R055] start_date: expected a date"),
        ("[R003.procurement_method]\nopen = many\n", "[R003.procurement_method] open: expected a natural number"),
        ("threshold\n", "is not a settings file"),
    ],
)
def test_bad_settings_files_are_refused_naming_section_and_key(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=r"deployment\.ini") as caught:
        cardinal.Settings.from_ini(text, source="deployment.ini")
    assert message in str(caught.value)


def test_ledger_indicators_in_one_pass_equal_each_indicator_apart() -> None:
    # the hand-made data sets above, together, so that there are flags to compare
    releases = [_priced(f"ocds-abc123-p{i}", 100, 100 + d) for i, d in enumerate([5, 6, 6, 7, 7, 5, 6])]
    releases += [_priced("ocds-abc123-close", 100_000, 100_100), _priced("ocds-abc123-lemon", 100, 200)]
    for supplier, variety in {"S1": 1, "S2": 1, "S3": 2, "S4": 2, "S5": 2, "Wide": 9}.items():
        for i in range(3):
            codes = [f"{(10 + k) * 1000000 + i}" for k in range(variety)]
            releases.append(_awarded(f"ocds-abc123-{supplier}-{i}", supplier, codes))
    releases += [
        _process("ocds-abc123-o1", "open", estimate=10_000),
        _process("ocds-abc123-d1", "direct", awards=[("Friend", 6_000, "MXN")]),
        _process("ocds-abc123-d2", "direct", awards=[("Friend", 4_000, "MXN")]),
    ]
    settings = cardinal.Settings(r048_minimum_contracting_processes=3)
    reads = []

    def once() -> Any:  # a stream that can be read only once, counting what is read
        for ocid, compiled in releases:
            reads.append(ocid)
            yield ocid, compiled

    by_process, by_organisation = cardinal.ledger_indicators(once(), settings)
    assert reads == [ocid for ocid, _ in releases]  # each release read exactly once
    assert by_process == cardinal.process_fence_indicators(releases, settings)
    assert by_organisation == cardinal.organisation_indicators(releases, settings)
    assert {code for codes in by_process.values() for code in codes} == {"R024", "R058"}
    found = {code for flags in by_organisation.values() for codes in flags.values() for code in codes}
    assert {"R048", "R055"} <= found, found  # flags to compare, not two empty results
    assert {k: v["R048"] for k, v in by_organisation["tenderer"].items() if "R048" in v} == cardinal.r048(
        releases, settings
    )
    assert cardinal.ledger_indicators(iter([])) == ({}, {role: {} for role in cardinal.ROLES})


def _mixed_currencies() -> list[tuple[str, dict[str, Any]]]:
    """A ledger whose first currency met is a direct award's (USD), with open tenders in two
    currencies, sums whose float result depends on the order of adding (0.1 + 0.2 + 0.3), ties
    between the smallest open tenders, and the data sets of the test above."""
    releases = [_process("ocds-abc123-a0", "direct", awards=[("Friend", 0.1, "USD")])]
    releases += [_process(f"ocds-abc123-b{i}", "open", estimate=0.5) for i in range(2)]  # MXN: a tie
    releases += [_process("ocds-abc123-c0", "direct", awards=[("Friend", 0.2, "USD"), ("Other", 9, "MXN")])]
    releases += [_process("ocds-abc123-c1", "direct", awards=[("Friend", 0.3, "USD")])]
    usd = _process("ocds-abc123-d0", "open")
    usd[1]["tender"]["value"] = {"amount": 0.6, "currency": "USD"}
    releases += [usd, _process("ocds-abc123-d1", "direct", awards=[("Friend", 0.6, "MXN")], buyer="Town")]
    releases += [_priced(f"ocds-abc123-p{i}", 100, 100 + d) for i, d in enumerate([5, 6, 6, 7, 7, 5, 6])]
    releases += [_priced("ocds-abc123-close", 100_000, 100_100), _priced("ocds-abc123-lemon", 100, 200)]
    for supplier, variety in {"S1": 1, "S2": 1, "S3": 2, "S4": 2, "Wide": 9}.items():
        for i in range(3):
            codes = [f"{(10 + k) * 1000000 + i}" for k in range(variety)]
            releases.append(_awarded(f"ocds-abc123-{supplier}-{i}", supplier, codes))
    return releases


@pytest.mark.parametrize(
    "settings",
    [
        cardinal.Settings(r048_minimum_contracting_processes=3),
        cardinal.Settings(r055_currency="MXN", r048_minimum_contracting_processes=3),
        cardinal.Settings(r055_threshold=0.6, r055_procurement_methods=frozenset()),
    ],
)
def test_partitions_merged_in_order_give_exactly_one_streams_results(settings: cardinal.Settings) -> None:
    import pickle

    releases = _mixed_currencies()
    whole = cardinal.ledger_indicators(releases, settings)
    assert whole[0] and any(whole[1].values())  # flags to compare, not two empty results
    # every cut into two and three consecutive partitions, each accumulator sent through pickle
    # as the process pool's workers send it back
    cuts = [(i,) for i in range(len(releases) + 1)] + [(i, j) for i in range(0, 20, 3) for j in range(i, 25, 4)]
    for cut in cuts:
        edges = [0, *cut, len(releases)]
        parts = []
        for start, end in itertools.pairwise(edges):
            part = cardinal.LedgerIndicators(settings)
            for ocid, compiled in releases[start:end]:
                part.add(ocid, compiled)
            parts.append(pickle.loads(pickle.dumps(part)))
        merged = parts[0]
        for later in parts[1:]:
            merged.merge(later)
        result = merged.result()
        assert result == whole, cut
        assert json.dumps(result) == json.dumps(whole), cut  # the same order too


def test_r055_compares_the_first_currency_met_and_adds_amounts_in_ledger_order() -> None:
    found = cardinal.r055(_mixed_currencies()[:6])
    # USD is met first (a direct award); the smallest open tender in USD is 0.6; Friend's USD
    # awards add up to 0.1 + 0.2 + 0.3 = 0.6000000000000001 in that order: flagged
    (pair,) = found["buyer"]["name:city"]["pairs"]
    assert found["buyer"]["name:city"]["currency"] == "USD" and pair["total"] == 0.6
    assert pair["ocids"] == ["ocds-abc123-a0", "ocds-abc123-c0", "ocds-abc123-c1"]
    assert found["buyer"]["name:city"]["minimum_amount"] == 0.6
