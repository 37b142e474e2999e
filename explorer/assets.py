"""The explorer's static files, served under content-hashed names (``explorer.3f2a9c1e0b7d.js``):
a name changes whenever its bytes do, so every response can be cached for a year
(``immutable``); an old name keeps answering only while it is the current one. Files are read
once at startup and kept in memory with their gzip form (the set is small, a few tens of kB)."""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

STATIC_DIR = Path(__file__).parent / "static"
IMMUTABLE = "public, max-age=31536000, immutable"


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    gzipped: bytes
    media_type: str
    etag: str


class Assets:
    """Content-hashed URLs of the files of ``directory`` (only those of ``names``, if given) and
    their responses."""

    def __init__(
        self, directory: Path = STATIC_DIR, *, prefix: str = "/static/", names: Collection[str] | None = None
    ) -> None:
        self.prefix = prefix
        self._urls: dict[str, str] = {}
        self._files: dict[str, Asset] = {}
        for path in sorted(p for p in directory.iterdir() if p.is_file() and (names is None or p.name in names)):
            body = path.read_bytes()
            digest = hashlib.sha256(body).hexdigest()[:12]
            hashed = f"{path.stem}.{digest}{path.suffix}"
            media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            if media_type.startswith("text/") or media_type in ("application/javascript", "image/svg+xml"):
                media_type += "; charset=utf-8"
            self._urls[path.name] = prefix + hashed
            self._files[hashed] = Asset(body, gzip.compress(body, 9, mtime=0), media_type, f'"{digest}"')

    def url(self, name: str) -> str:
        """The current URL of file ``name``; raises KeyError for an unknown file."""
        return self._urls[name]

    def response(self, request: Request, hashed_name: str) -> Response | None:
        """The file's response (304 when the client has it), or None if no file has that name."""
        asset = self._files.get(hashed_name)
        if asset is None:
            return None
        headers = {"ETag": asset.etag, "Cache-Control": IMMUTABLE, "Vary": "Accept-Encoding"}
        if request.headers.get("if-none-match") == asset.etag:
            return Response(status_code=304, headers=headers)
        if "gzip" in request.headers.get("accept-encoding", "") and len(asset.gzipped) < len(asset.body):
            return Response(asset.gzipped, media_type=asset.media_type, headers={**headers, "Content-Encoding": "gzip"})
        return Response(asset.body, media_type=asset.media_type, headers=headers)
