"""JSON responses with validators: a strong ETag of the body, ``304 Not Modified`` when the
client already has it, and a Cache-Control that says whether the content can ever change."""

from __future__ import annotations

import hashlib

from fastapi import Request, Response
from pydantic import BaseModel

#: For what can never change (entries, proofs at a fixed size, consistency between two sizes).
IMMUTABLE = "public, max-age=31536000, immutable"
#: For what moves on (the checkpoint, a tender's history): revalidate each time (cheap: 304).
REVALIDATE = "public, no-cache"
#: For what is fixed but may be dropped soon (a partial tile, once its full tile exists).
SHORT_LIVED = "public, max-age=60"


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in tags or etag in tags


def cached(request: Request, body: bytes, *, immutable: bool, media_type: str = "application/json") -> Response:
    """``body`` with an ETag and Cache-Control; 304 (no body) if ``If-None-Match`` matches."""
    etag = etag_of(body)
    headers = {"ETag": etag, "Cache-Control": IMMUTABLE if immutable else REVALIDATE, "Vary": "Accept"}
    if matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


def cached_model(request: Request, model: BaseModel, *, immutable: bool) -> Response:
    """:func:`cached` of ``model`` as JSON (``None`` fields that are optional in it left out)."""
    return cached(request, model.model_dump_json(exclude_unset=True).encode(), immutable=immutable)
