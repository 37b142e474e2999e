"""The privacy rules (docs/privacy.md): which payload fields hold personal data of natural persons,
on real published OCDS data and on hand-made cases (marked, not marked, missing data), and the
operator's own rules file (good and bad)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.core.errors import InvalidArgumentError
from ledger.procurement import privacy

from .test_importer import CDMX, PARAGUAY, SAMPLE, _release, _source

MEXICO = Path(__file__).parent.parent / "assets" / "ocds" / "mexico-federal-record-package.json"
CONTACT_FIELDS = ("name", "email", "telephone", "faxNumber", "url")
_STEP = re.compile(r"\[(\d+)\]|\['((?:[^'\\]|\\.)*)'\]")


@pytest.fixture(autouse=True)
def _default_rules() -> Iterator[None]:
    yield
    privacy.configure_file(None)


def _at(payload: Any, path: str) -> Any:
    """The value at an RFC 9535 normalized path (as privacy.marks writes them)."""
    assert path.startswith("$")
    value = payload
    for index, name in _STEP.findall(path[1:]):
        value = value[int(index)] if index else value[name.replace("\\'", "'").replace("\\\\", "\\")]
    return value


def _contact_fields(value: Any) -> int:
    """Members of every ``contactPoint`` object, counted by walking the payload independently."""
    if isinstance(value, list):
        return sum(_contact_fields(v) for v in value)
    if not isinstance(value, dict):
        return 0
    here = value.get("contactPoint")
    count = sum(1 for key in CONTACT_FIELDS if key in here) if isinstance(here, dict) else 0
    return count + sum(_contact_fields(v) for v in value.values())


def _paths(found: list[privacy.Mark]) -> dict[str, str]:
    return {mark.path: mark.rule for mark in found}


# --- real published data -------------------------------------------------------------------------


def test_contact_points_of_the_ocp_sample_are_marked_and_nothing_else() -> None:
    releases = _source(SAMPLE)
    first = privacy.marks("tender.planned", releases[0])
    assert _paths(first) == {f"$['parties'][0]['contactPoint']['{key}']": "contact-point" for key in CONTACT_FIELDS}
    assert _at(releases[0], first[0].path) == "Procurement Team"
    assert _at(releases[0], first[1].path) == "procurement-team@example.com"
    total = 0
    for release in releases:
        found = privacy.marks("tender.published", release)
        assert {mark.rule for mark in found} <= {"contact-point"}  # the sample's parties are organisations
        for mark in found:
            assert "['contactPoint']" in mark.path and isinstance(_at(release, mark.path), str)
        assert len(found) == _contact_fields(release)
        total += len(found)
    assert total == 40


def test_missing_fields_of_real_data_are_not_marked() -> None:
    release = json.loads(MEXICO.read_text(encoding="utf-8"))["records"][0]["releases"][0]
    found = _paths(privacy.marks("award.issued", release))
    assert "contactPoint" not in release["parties"][0]
    assert not any(path.startswith("$['parties'][0]") for path in found)  # no contact point, nothing marked
    assert "faxNumber" not in release["parties"][1]["contactPoint"]
    assert set(found) >= {f"$['parties'][1]['contactPoint']['{k}']" for k in ("name", "email", "telephone")}
    assert "$['parties'][1]['contactPoint']['faxNumber']" not in found
    assert len(found) == _contact_fields(release)


def test_a_release_without_personal_data_has_no_marks() -> None:
    (release,) = _source(PARAGUAY)
    assert _contact_fields(release) == 0
    assert privacy.marks("contract.signed", release) == []


# --- hand-made cases -------------------------------------------------------------------------------


def _with_sole_trader(scale: str | None = "selfEmployed") -> dict[str, Any]:
    trader: dict[str, Any] = {
        "id": "MX-RFC-PEGJ800101AB1",
        "name": "Juana Pérez García",
        "identifier": {"scheme": "MX-RFC", "id": "PEGJ800101AB1"},
        "address": {"streetAddress": "Calle 5 #12", "locality": "Puebla"},
        "roles": ["supplier"],
    }
    if scale is not None:
        trader["details"] = {"scale": scale}
    return _release(
        tag=["award"],
        parties=[
            {"id": "MX-BUYER", "name": "Secretaría de Salud", "roles": ["buyer"], "details": {"scale": "large"}},
            trader,
            {"id": "MX-BIG", "name": "Grande SA de CV", "roles": ["supplier"], "details": {"scale": "large"}},
        ],
        awards=[
            {
                "id": "a1",
                "suppliers": [
                    {"id": "MX-RFC-PEGJ800101AB1", "name": "Juana Pérez García"},
                    {"id": "MX-BIG", "name": "Grande SA de CV"},
                ],
            }
        ],
    )


def test_a_self_employed_party_and_every_reference_to_it_are_marked() -> None:
    release = _with_sole_trader()
    found = _paths(privacy.marks("award.issued", release))
    assert found == {
        "$['parties'][1]['name']": "natural-person-party",
        "$['parties'][1]['identifier']": "natural-person-party",
        "$['parties'][1]['address']": "natural-person-party",
        "$['awards'][0]['suppliers'][0]['name']": "natural-person-reference",
    }
    assert _at(release, "$['awards'][0]['suppliers'][0]['name']") == "Juana Pérez García"


@pytest.mark.parametrize("scale", ["large", "sme", "micro", None])
def test_an_organisation_is_not_a_natural_person(scale: str | None) -> None:
    assert privacy.marks("award.issued", _with_sole_trader(scale)) == []


def test_a_sole_trader_with_a_contact_point_marks_it_once_per_place() -> None:
    release = _with_sole_trader("sole trader")
    release["parties"][1]["contactPoint"] = {"name": "Juana Pérez", "email": "juana@example.test"}
    found = privacy.marks("award.issued", release)
    assert len({mark.path for mark in found}) == len(found)  # each place once, by the first rule
    assert _paths(found)["$['parties'][1]['contactPoint']['email']"] == "contact-point"
    assert _paths(found)["$['parties'][1]['contactPoint']"] == "natural-person-party"


def test_signatories_persons_and_beneficial_owners_are_marked_whole() -> None:
    release = _release(
        tag=["contract"],
        parties=[{"id": "P1", "name": "Acme", "beneficialOwners": [{"name": "Ann Owner", "nationality": "MX"}]}],
        contracts=[{"id": "c1", "awardID": "a1", "signatories": [{"name": "Bob Signer"}]}],
        tender={"id": "t1", "persons": [{"name": "Eve Evaluator"}]},
    )
    found = _paths(privacy.marks("contract.signed", release))
    assert found == {
        "$['parties'][0]['beneficialOwners'][0]": "beneficial-owner",
        "$['tender']['persons'][0]": "person",
        "$['contracts'][0]['signatories'][0]": "signatory",
    }


@pytest.mark.parametrize("escaped", [False, True])
def test_the_json_text_of_a_payload_changes_no_mark(escaped: bool) -> None:
    """``places(text=...)`` skips the search for a ``..name`` the text lacks, and every rule whose
    names or values it lacks: what it finds is what the walk finds, for real releases (contact
    points present), releases without the names, releases each rule marks (a sole trader's
    ``when`` value, the references to it, the officers' registry's rule of the whole payload),
    and a name or value spelled with an escape (the text then holds a backslash: walked)."""
    with_persons = _release(tag=["tender"], tender={"id": "t1", "persons": [{"name": "Eve Evaluator"}]})
    signed = _release(
        tag=["contract"],
        parties=[{"id": "P1", "name": "Acme", "beneficialOwners": [{"name": "Ann Owner"}]}],
        contracts=[{"id": "c1", "awardID": "a1", "signatories": [{"name": "Bob Signer"}]}],
    )
    officer = {"address": "0x" + "ab" * 20, "name": "Ana Officer", "role": "buyer"}
    cases = [*_source(SAMPLE, PARAGUAY, CDMX), _release(tag=["tender"]), with_persons, signed, officer,
             _with_sole_trader(), _with_sole_trader("soleTrader"), _with_sole_trader(None)]  # fmt: skip
    for release in cases:
        text = json.dumps(release, ensure_ascii=False).encode()
        if escaped:
            for name in (b"contactPoint", b"persons", b"selfEmployed", b"signatories", b"name"):
                text = text.replace(b'"' + name + b'"', b'"\\u' + b"%04x" % name[0] + name[1:] + b'"')
            assert json.loads(text) == release
        for kind in ("tender.published", "award.issued", "contract.signed", "officer.registered"):
            assert privacy.places(kind, release, text=text) == privacy.places(kind, release)
    assert privacy.places("award.issued", _with_sole_trader(), text=json.dumps(_with_sole_trader()).encode())
    assert privacy.places("tender.published", with_persons, text=json.dumps(with_persons).encode())
    assert privacy._absent(["contactPoint"], b'{"a":"contactPoint"}') is False  # quoted: may be a name
    assert privacy._absent(["contactPoint"], b'{"contactPoints":1}') is True
    assert privacy._absent(["contactPoint"], b'{"\\u0063ontactPoint":1}') is False


def test_officers_names_in_the_registry_events() -> None:
    payload = {"address": "0x" + "ab" * 20, "name": "Ana Officer", "role": "buyer"}
    assert _paths(privacy.marks("officer.registered", payload)) == {"$['name']": "officer"}
    assert privacy.marks("officer.revoked", {"address": "0x" + "ab" * 20, "reason": "left"}) == []


def test_payloads_of_other_shapes_are_not_marked() -> None:
    for payload in (None, [], "text", 3, {"parties": "not a list"}, {"parties": [None, 1, "x"]}):
        assert privacy.marks("tender.published", payload) == []
    for scale in ({"code": "selfEmployed"}, ["selfEmployed"], 1):  # not a code: not matched, no error
        release = _with_sole_trader()
        release["parties"][1]["details"]["scale"] = scale
        assert privacy.marks("award.issued", release) == []


def test_odd_keys_are_escaped_in_the_path() -> None:
    assert privacy.normalized_path(("it's", 0, "a\\b", "\n\x01")) == "$['it\\'s'][0]['a\\\\b']['\\n\\u0001']"
    payload = {"it's": [{"a\\b": "x"}]}
    assert _at(payload, privacy.normalized_path(("it's", 0, "a\\b"))) == "x"


# --- the operator's rules ----------------------------------------------------------------------------


def _rules_file(tmp_path: Path, document: Any) -> Path:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_an_operators_rules_file_replaces_the_defaults(tmp_path: Path) -> None:
    path = _rules_file(
        tmp_path,
        {
            "format": "tenderproof-privacy-rules/1",
            "rules": [
                {
                    "name": "tax-number",
                    "each": "$.parties[*]",
                    "when": {"identifier.scheme": ["MX-RFC"]},
                    "fields": ["identifier"],
                }
            ],
        },
    )
    privacy.configure_file(path)
    release = _with_sole_trader(None)
    assert _paths(privacy.marks("award.issued", release)) == {"$['parties'][1]['identifier']": "tax-number"}
    assert privacy.marks("tender.planned", _source(SAMPLE)[0]) == []  # contact points: not in these rules
    privacy.configure_file(None)
    assert len(privacy.marks("tender.planned", _source(SAMPLE)[0])) == 5


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ({"format": "other/1", "rules": []}, "format: expected 'tenderproof-privacy-rules/1', got 'other/1'"),
        ({"format": privacy.FORMAT}, "rules: must be a list"),
        ({"format": privacy.FORMAT, "rules": [{"name": "x", "each": "parties"}]}, "rules[0].each: must start with '$'"),
        (
            {"format": privacy.FORMAT, "rules": [{"name": "x", "each": "$.parties[0]"}]},
            "rules[0].each: cannot read '[0]'",
        ),
        ({"format": privacy.FORMAT, "rules": [{"name": "X Y", "each": "$"}]}, "rules[0].name: must be lower-case"),
        (
            {"format": privacy.FORMAT, "rules": [{"name": "x", "each": "$", "fields": "name"}]},
            "rules[0].fields: must be a list",
        ),
        (
            {"format": privacy.FORMAT, "rules": [{"name": "x", "each": "$", "wen": {}}]},
            "rules[0]: unknown member 'wen'",
        ),
        (
            {"format": privacy.FORMAT, "rules": [{"name": "x", "each": "$", "referring_to": "y"}]},
            "rules[0].referring_to: names no earlier rule ('y')",
        ),
        (
            {"format": privacy.FORMAT, "rules": [{"name": "x", "each": "$"}, {"name": "x", "each": "$"}]},
            "rules[1].name: 'x' is used twice",
        ),
    ],
)
def test_a_bad_rules_file_is_refused_naming_the_setting_and_the_reason(
    tmp_path: Path, document: Any, reason: str
) -> None:
    path = _rules_file(tmp_path, document)
    with pytest.raises(InvalidArgumentError) as caught:
        privacy.configure_file(path)
    assert caught.value.field == "TENDERPROOF_PRIVACY_RULES"
    assert f"{path}: {reason}" in str(caught.value)
    assert len(privacy.marks("tender.planned", _source(SAMPLE)[0])) == 5  # the rules in force did not change


def test_a_missing_or_unreadable_rules_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="cannot read the privacy rules"):
        privacy.configure_file(tmp_path / "absent.json")
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    with pytest.raises(InvalidArgumentError, match=r"bad\.json: not JSON"):
        privacy.configure_file(tmp_path / "bad.json")


def test_the_shipped_rules_parse() -> None:
    names = [rule.name for rule in privacy.rules_of_file(None)]
    assert names == [
        "contact-point",
        "natural-person-party",
        "natural-person-reference",
        "beneficial-owner",
        "person",
        "signatory",
        "officer",
    ]


# --- the shortcut past rules that select nothing ---------------------------------------------------

#: Member names the shipped rules look for, and others, to build payloads that sometimes match.
_NAMES = ["parties", "contactPoint", "persons", "beneficialOwners", "contracts", "signatories", "details", "scale",
          "name", "id", "email", "tender", "items", "selfEmployed"]  # fmt: skip
_SCALARS = st.one_of(st.none(), st.integers(-3, 3), st.sampled_from(["selfEmployed", "sole trader", "x", "1"]))
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(_NAMES), inner, max_size=4),
    max_leaves=25,
)
_PARTY = st.fixed_dictionaries(
    {"id": st.sampled_from(["1", "2"]), "details": st.fixed_dictionaries({"scale": _SCALARS})},
    optional={"name": _SCALARS, "contactPoint": _JSON, "beneficialOwners": st.lists(_JSON, max_size=2)},
)
_PAYLOAD = st.dictionaries(st.sampled_from(_NAMES), _JSON, max_size=5) | st.fixed_dictionaries(
    {"parties": st.lists(_PARTY, max_size=3)},
    optional={
        "awards": st.lists(st.dictionaries(st.sampled_from(_NAMES), _JSON | _PARTY, max_size=3), max_size=2),
        "persons": _JSON,
    },
)


@settings(max_examples=200, deadline=None)
@given(payload=_PAYLOAD, kind=st.sampled_from(["tender.published", "award.issued", "officer.registered"]))
def test_skipping_rules_that_select_nothing_marks_the_same_places(payload: dict[str, Any], kind: str) -> None:
    """``places`` passes over a rule whose first step finds nothing in the payload (a ``.name`` it
    has no member of, a ``..name`` the one walk did not find): the places marked must be those
    the full selection of every rule marks."""
    found = privacy.places(kind, payload)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(privacy, "_may_select", lambda *_: True)
        assert privacy.places(kind, payload) == found


def test_real_releases_are_marked_the_same_with_and_without_the_shortcut() -> None:
    releases = _source(SAMPLE) + _source(PARAGUAY) + [_with_sole_trader()]
    found = [privacy.places(kind, r) for r in releases for kind in ("tender.published", "award.issued")]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(privacy, "_may_select", lambda *_: True)
        assert [privacy.places(kind, r) for r in releases for kind in ("tender.published", "award.issued")] == found
    assert any(found)  # some places are marked: the comparison is not of empty lists only
