"""A generated, realistic OCDS 1.1 data set for the embedded default (``tenderproof demo``).

:func:`release_package` makes, deterministically (a seeded generator, no clock), the releases of
:data:`TENDERS` fictional tenders of six public buyers over 2025-2026: planning, tender, sometimes
an amendment or a cancellation, the award, the contract, its amendments, payments and
termination, with the irregularities the red flags look for in a plausible share of them (a
single bidder, a short tender period, an award above the estimate, a contract amended soon after
its award, a buyer that keeps awarding the same supplier). All names are invented; the data set
is the project's own (same licence as the code).

:func:`import_demo` imports it through :mod:`ledger.procurement.importer`, so it is validated
against the OCDS schema and recorded like any published data; importing it again records nothing.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ledger.procurement import importer

if TYPE_CHECKING:
    from ledger.log import Log

PREFIX = "ocds-tp0dem"
TENDERS = 120
SEED = 20260301
START = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)

BUYERS = [
    ("MX-MUN-042", "Municipio de San Isidro"),
    ("MX-EST-007", "Secretaría de Salud del Estado de Jalisco"),
    ("ES-L01280796", "Ayuntamiento de Villaverde"),
    ("CO-NIT-800123456", "Gobernación de Antioquia"),
    ("PY-DNCP-12", "Ministerio de Obras Públicas y Comunicaciones"),
    ("GB-LAC-E09000099", "Borough of Northfield"),
]
CURRENCY = {"MX": "MXN", "ES": "EUR", "CO": "COP", "PY": "PYG", "GB": "GBP"}
_FIRMS = ["Aztlán", "del Norte", "Integrales", "Medisur", "Andina", "TecnoRed", "Iberia", "Verde", "Northfield"]
_KINDS = ["Constructora", "Servicios", "Suministros", "Ingeniería"]
#: 36 invented suppliers: "Constructora Aztlán", "Servicios del Norte", ...
SUPPLIERS = [
    (f"SUP-{i + 1:03d}", f"{kind} {firm}") for i, (kind, firm) in enumerate((k, f) for f in _FIRMS for k in _KINDS)
]
SUBJECTS = [
    ("works", "Resurfacing of {} ({:.1f} km)", ["Avenida Juárez", "Calle Mayor", "Ring Road", "Ruta 2"]),
    ("goods", "Medical supplies for {} ({} lots)", ["the general hospital", "rural clinics", "emergency services"]),
    ("goods", "School furniture for {} ({} classrooms)", ["primary schools", "the technical institute"]),
    ("services", "Waste collection in {} ({} months)", ["the north district", "the old town", "industrial park"]),
    ("services", "IT support for {} ({} sites)", ["town hall", "health centres", "public libraries"]),
    ("works", "Drainage works in {} ({:.1f} km)", ["Barrio Alto", "Riverside", "Colonia Centro"]),
]
METHODS = ["open", "open", "open", "selective", "limited", "direct"]


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _org(party: tuple[str, str]) -> dict[str, str]:
    return {"id": party[0], "name": party[1]}


def _release(ocid: str, n: int, tag: str, date: datetime, **sections: Any) -> dict[str, Any]:
    return {
        "ocid": ocid,
        "id": f"{ocid}-{n:02d}-{tag}",
        "date": _stamp(date),
        "tag": [tag],
        "initiationType": "tender",
        **sections,
    }


def _tender_releases(rng: random.Random, number: int, tenders: int, spread: int) -> list[dict[str, Any]]:
    buyer = BUYERS[number % len(BUYERS)]
    currency = CURRENCY[buyer[0][:2]]
    category, pattern, places = SUBJECTS[rng.randrange(len(SUBJECTS))]
    title = pattern.format(rng.choice(places), rng.uniform(0.8, 6.0) if "km" in pattern else rng.randint(2, 24))
    ocid = f"{PREFIX}-{2025 + number * 2 // tenders}-{1000 + number}"
    scale = {"MXN": 20, "EUR": 1, "COP": 4000, "PYG": 7500, "GBP": 0.85}[currency]
    estimate = round(rng.uniform(40_000, 900_000) * scale, -2)
    method = METHODS[rng.randrange(len(METHODS))]
    planned = START + timedelta(days=number * spread // tenders + rng.randint(0, 4), hours=rng.randint(0, 6))
    published = planned + timedelta(days=rng.randint(7, 30))
    days = rng.choice([5, 10, 12, 20, 25, 30, 30, 35, 40, 45])
    end = published + timedelta(days=days)
    parties = [{**_org(buyer), "roles": ["buyer", "procuringEntity"]}]
    tender: dict[str, Any] = {
        "id": f"T-{number:04d}",
        "title": title,
        "status": "active",
        "procurementMethod": method,
        "mainProcurementCategory": category,
        "value": {"amount": estimate, "currency": currency},
        "tenderPeriod": {"startDate": _stamp(published), "endDate": _stamp(end)},
    }
    out = [
        _release(
            ocid,
            1,
            "planning",
            planned,
            buyer=_org(buyer),
            parties=parties,
            planning={"budget": {"amount": {"amount": round(estimate * 1.05, -2), "currency": currency}}},
            tender={"id": tender["id"], "title": title, "status": "planned"},
        ),
        _release(ocid, 2, "tender", published, buyer=_org(buyer), tender=tender),
    ]
    if rng.random() < 0.15:
        extended = end + timedelta(days=7)
        out.append(
            _release(
                ocid,
                3,
                "tenderAmendment",
                published + timedelta(days=days // 2),
                tender={
                    "id": tender["id"],
                    "tenderPeriod": {"endDate": _stamp(extended)},
                    "amendments": [
                        {
                            "id": "am-1",
                            "date": _stamp(published + timedelta(days=days // 2)),
                            "rationale": "Deadline extended after enquiries",
                        }
                    ],
                },
            )
        )
        end = extended
    if rng.random() < 0.08:
        out.append(
            _release(
                ocid,
                4,
                "tenderCancellation",
                end - timedelta(days=1),
                tender={"id": tender["id"], "status": "cancelled"},
            )
        )
        return out
    if end > START + timedelta(days=spread - 40):  # still open at the data set's horizon
        return out
    favoured = number % len(BUYERS) == 0 and rng.random() < 0.6
    bidders = 1 if method in ("direct", "limited") or rng.random() < 0.12 else rng.randint(2, 6)
    pool = rng.sample(SUPPLIERS, bidders)
    winner = SUPPLIERS[0] if favoured else pool[0]
    tenderers = [_org(s) for s in [winner, *[p for p in pool if p != winner]][:bidders]]
    awarded_at = end + timedelta(days=rng.randint(5, 20))
    amount = round(estimate * rng.uniform(0.78, 0.99 if rng.random() < 0.85 else 1.25), -2)
    award = {
        "id": f"{ocid}-award-1",
        "title": f"Award: {title}",
        "status": "active",
        "date": _stamp(awarded_at),
        "value": {"amount": amount, "currency": currency},
        "suppliers": [_org(winner)],
    }
    out.append(
        _release(
            ocid,
            5,
            "award",
            awarded_at,
            parties=[
                *parties,
                *[{**t, "roles": ["tenderer"] + (["supplier"] if t["id"] == winner[0] else [])} for t in tenderers],
            ],
            tender={
                "id": tender["id"],
                "status": "complete",
                "numberOfTenderers": len(tenderers),
                "tenderers": tenderers,
            },
            awards=[award],
        )
    )
    signed = awarded_at + timedelta(days=rng.randint(3, 15))
    contract_id = f"{ocid}-contract-1"
    contract: dict[str, Any] = {
        "id": contract_id,
        "awardID": award["id"],
        "title": f"Contract: {title}",
        "status": "active",
        "value": {"amount": amount, "currency": currency},
        "dateSigned": _stamp(signed),
        "period": {"startDate": _stamp(signed), "endDate": _stamp(signed + timedelta(days=180))},
    }
    out.append(_release(ocid, 6, "contract", signed, contracts=[contract]))
    if rng.random() < 0.2:
        amended = awarded_at + timedelta(days=rng.choice([10, 20, 60, 90]))
        raised = round(amount * 1.15, -2)
        out.append(
            _release(
                ocid,
                7,
                "contractAmendment",
                amended,
                contracts=[
                    {
                        "id": contract_id,
                        "awardID": award["id"],
                        "value": {"amount": raised, "currency": currency},
                        "amendments": [{"id": "cam-1", "date": _stamp(amended), "rationale": "Additional works"}],
                    }
                ],
            )
        )
    paid = signed + timedelta(days=rng.randint(20, 60))
    out.append(
        _release(
            ocid,
            8,
            "implementation",
            paid,
            contracts=[
                {
                    "id": contract_id,
                    "awardID": award["id"],
                    "implementation": {
                        "transactions": [
                            {
                                "id": "pay-1",
                                "date": _stamp(paid),
                                "value": {"amount": round(amount / 2, 2), "currency": currency},
                                "payee": _org(winner),
                            }
                        ]
                    },
                }
            ],
        )
    )
    if rng.random() < 0.5:
        out.append(
            _release(
                ocid,
                9,
                "contractTermination",
                paid + timedelta(days=120),
                contracts=[{"id": contract_id, "awardID": award["id"], "status": "terminated"}],
            )
        )
    return out


def releases(tenders: int = TENDERS, *, seed: int = SEED, spread: int = 600) -> Iterator[dict[str, Any]]:
    """The releases of ``tenders`` generated tenders, tender after tender (deterministic for a
    ``seed``; the benchmark makes large files with it), planned over ``spread`` days from
    :data:`START` in the order they come (a tender's planning release is its earliest, at most
    four days and six hours after its place in that spread); a tender that would still be open 40
    days before the end of the spread stops before its award."""
    rng = random.Random(seed)
    for number in range(tenders):
        yield from _tender_releases(rng, number, tenders, spread)


def release_package() -> dict[str, Any]:
    """The demo's OCDS 1.1 release package (the same every time)."""
    return {
        "uri": f"https://tenderproof.example/demo/{PREFIX}.json",
        "version": "1.1",
        "publishedDate": _stamp(START + timedelta(days=640)),
        "publisher": {"name": "Tenderproof demo data (generated)"},
        "releases": list(releases()),
    }


def import_demo(log: Log, *, now: datetime) -> importer.Report:
    """Import :func:`release_package` into ``log`` (a second time records nothing)."""
    data = json.dumps(release_package()).encode()
    return importer.import_files(log, [("demo", io.BytesIO(data))], now=now, fmt="json", strict=True)
