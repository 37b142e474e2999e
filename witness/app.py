"""The witness's HTTP interface: ``POST /add-checkpoint`` (C2SP tlog-witness)."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response

from .service import Witness

MAX_BODY = 64 * 1024


def create_app(witness: Witness) -> FastAPI:
    app = FastAPI(title="Tenderproof witness", openapi_url=None, docs_url=None, redoc_url=None)

    @app.post("/add-checkpoint")
    async def add_checkpoint(request: Request) -> Response:
        raw = await request.body()
        if len(raw) > MAX_BODY:
            return Response(f"body larger than {MAX_BODY} bytes\n", status_code=400, media_type="text/plain")
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError:
            return Response("body is not UTF-8\n", status_code=400, media_type="text/plain")
        answer = witness.add_checkpoint(body)
        # Headers set as given: Starlette would append "; charset" to a text/* media type, and
        # tlog-witness names the 409's Content-Type exactly.
        return Response(answer.body.encode(), status_code=answer.status, headers={"Content-Type": answer.content_type})

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "witness": str(witness.cosigner.key)}

    return app
