"""Payload validation: every event type's shape, errors naming the JSON path and the reason."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from demo import tenders as demo
from ledger.core.envelope import EVENT_TYPES
from ledger.core.errors import InvalidArgumentError
from ledger.procurement import payloads

from .helpers import OFFICER, bid, history, published


def _refused(event_type: str, payload: Any) -> InvalidArgumentError:
    with pytest.raises(InvalidArgumentError) as caught:
        payloads.validate(event_type, payload)
    return caught.value


def test_every_event_type_has_a_model() -> None:
    assert set(payloads.MODELS) == EVENT_TYPES


def test_demo_and_test_histories_are_valid_and_extra_ocds_fields_pass() -> None:
    for item in demo.submissions():
        payloads.validate(item.type, item.payload)
    for event_type, payload, _ in history():
        payloads.validate(event_type, payload)
    extended = published(items=[{"id": "1", "description": "LED lamp"}], mainProcurementCategory="goods")
    model = payloads.validate("tender.published", extended)
    assert isinstance(model, payloads.Published)
    assert model.tender.title == "Street lighting renewal"


def _with(payload: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(payload)
    node = out
    *parents, last = path.split(".")
    for key in parents:
        node = node[key]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return out


_DELETE = object()
B, SALT = bid(1)


@pytest.mark.parametrize(
    ("event_type", "payload", "field", "reason"),
    [
        (
            "tender.published",
            _with(published(), "tender.value.amount", "abc"),
            "payload.tender.value.amount",
            "must be a number >= 0, got 'abc'",
        ),
        (
            "tender.published",
            _with(published(), "tender.value.amount", -5),
            "payload.tender.value.amount",
            "must be a number >= 0, got -5",
        ),
        (
            "tender.published",
            _with(published(), "tender.value.amount", True),
            "payload.tender.value.amount",
            "must be a number >= 0, got True",
        ),
        (
            "tender.published",
            _with(published(), "tender.value.currency", "eur"),
            "payload.tender.value.currency",
            "must be an ISO 4217 currency code of 3 capital letters, got 'eur'",
        ),
        ("tender.published", _with(published(), "tender.title", _DELETE), "payload.tender.title", "is required"),
        (
            "tender.published",
            _with(published(), "tender.title", 7),
            "payload.tender.title",
            "must be a non-empty string, got 7",
        ),
        (
            "tender.published",
            _with(published(), "tender.tenderPeriod.endDate", _DELETE),
            "payload.tender.tenderPeriod.endDate",
            "is required",
        ),
        (
            "tender.published",
            _with(published(), "tender.tenderPeriod.endDate", "2026-03-30"),
            "payload.tender.tenderPeriod.endDate",
            "must be an RFC 3339 date-time with a time zone, like '2026-03-30T23:59:59Z', got '2026-03-30'",
        ),
        (
            "tender.published",
            _with(published(), "tender.tenderPeriod.endDate", "2026-03-01T00:00:00Z"),
            "payload.tender.tenderPeriod",
            "endDate '2026-03-01T00:00:00Z' must be after startDate '2026-03-02T00:00:00Z'",
        ),
        (
            "tender.published",
            _with(published(), "tender.procurementMethod", "auction"),
            "payload.tender.procurementMethod",
            "must be one of 'open', 'selective', 'limited' or 'direct', got 'auction'",
        ),
        (
            "tender.published",
            _with(published(), "buyer", ["x"]),
            "payload.buyer",
            "must be a JSON object, got an array",
        ),
        ("tender.published", _with(published(), "buyer.name", _DELETE), "payload.buyer.name", "is required"),
        (
            "bid.committed",
            {"bidder": {"id": "x", "name": "X"}, "commitment": "AB" * 32},
            "payload.commitment",
            f"must be a SHA-256 digest, 64 lowercase hex digits, got {'AB' * 32!r}",
        ),
        (
            "bid.revealed",
            {"bid": B, "salt": "abcd"},
            "payload.salt",
            "must be 16 to 64 random bytes as lowercase hex, got 'abcd'",
        ),
        (
            "bid.revealed",
            {"bid": {**B, "tenderers": []}, "salt": SALT},
            "payload.bid.tenderers",
            "must have at least 1 item(s), got 0",
        ),
        (
            "bid.revealed",
            {"bid": {**B, "tenderers": [{"id": "a"}]}, "salt": SALT},
            "payload.bid.tenderers[0].name",
            "is required",
        ),
        (
            "award.issued",
            {
                "award": {
                    "id": "a",
                    "suppliers": [{"id": "s", "name": "S"}],
                    "value": {"amount": 1, "currency": "EUR"},
                    "status": "done",
                }
            },
            "payload.award.status",
            "must be one of 'pending' or 'active', got 'done'",
        ),
        ("contract.signed", {"contract": {"id": "c"}}, "payload.contract.awardID", "is required"),
        (
            "contract.payment",
            {"contract": {"id": "c"}, "transaction": {"id": "t", "value": {"amount": "1", "currency": "EUR"}}},
            "payload.transaction.value.amount",
            "must be a number >= 0, got '1'",
        ),
        (
            "tender.amended",
            {"tender": {"id": "T-1", "amendments": []}},
            "payload.tender.amendments",
            "must have at least 1 item(s), got 0",
        ),
        (
            "tender.cancelled",
            {"tender": {"id": "T-1", "statusDetails": "   "}},
            "payload.tender.statusDetails",
            "must be a non-empty string, got '   '",
        ),
        (
            "officer.registered",
            {"address": OFFICER.lower(), "name": "Ana"},
            "payload.address",
            f"must be EIP-55 checksummed: expected {OFFICER!r}, got {OFFICER.lower()!r}",
        ),
        (
            "officer.revoked",
            {"address": "0x12"},
            "payload.address",
            "must be an Ethereum address, 0x + 40 hex digits, got '0x12'",
        ),
    ],
)
def test_bad_payloads_name_the_field_and_the_reason(event_type: str, payload: Any, field: str, reason: str) -> None:
    error = _refused(event_type, payload)
    assert (error.field, error.reason) == (field, reason)


def test_every_bad_value_is_named_not_only_the_first() -> None:
    payload = {
        "tender": {"id": "T-1", "title": "", "value": {"amount": -5, "currency": "pesos"}},
        "buyer": {"id": "B-1", "name": "Municipio"},
    }
    error = _refused("tender.published", payload)
    problems = [(p.field, p.reason) for p in error.all_problems()]
    assert problems[0] == (error.field, error.reason)
    fields = [field for field, _ in problems]
    assert len(fields) == len(set(fields))
    assert {"payload.tender.title", "payload.tender.value.amount", "payload.tender.value.currency"} <= set(fields)
    assert dict(problems)["payload.tender.value.amount"] == "must be a number >= 0, got -5"
    # a layer that names the field in its own terms moves every problem with it
    renamed = error.renamed("items[2]." + error.field)
    assert [p.field for p in renamed.all_problems()] == ["items[2]." + field for field in fields]
    # one problem: nothing else
    one = _refused("tender.published", {**payload, "tender": {**payload["tender"], "title": "T", "value": None}})
    assert one.others == ()


def test_payload_must_be_an_object_and_type_known() -> None:
    error = _refused("tender.published", [1])
    assert (error.field, error.reason) == ("payload", "must be a JSON object, got list")
    error = _refused("tender.sold", {})
    assert error.field == "type"
    assert error.reason.startswith("unknown event type 'tender.sold'")


def test_ocds_integer_ids_are_accepted_as_strings() -> None:
    model = payloads.validate("contract.signed", {"contract": {"id": 7, "awardID": 3}})
    assert isinstance(model, payloads.ContractSigned)
    assert (model.contract.id, model.contract.awardID) == ("7", "3")
    error = _refused("contract.signed", {"contract": {"id": True, "awardID": "a"}})
    assert (error.field, error.reason) == ("payload.contract.id", "must be a non-empty string or an integer, got True")


def test_validation_does_not_change_the_payload() -> None:
    payload = published()
    before = copy.deepcopy(payload)
    payloads.validate("tender.published", payload)
    assert payload == before


def test_json_schema_documents_the_checked_types() -> None:
    schema = payloads.json_schema("tender.published")
    assert schema["required"] == ["tender", "buyer"]
    assert schema["$defs"]["Value"]["properties"]["amount"] == {"type": "number", "minimum": 0, "title": "Amount"}
    assert schema["$defs"]["PublishedTender"]["required"] == ["id", "title", "tenderPeriod"]
    assert schema["additionalProperties"] is True
    assert payloads.json_schema("bid.committed")["properties"]["commitment"]["pattern"] == "^[0-9a-f]{64}$"
