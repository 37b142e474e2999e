"""A read-only JSON-RPC endpoint (``POST /rpc``) for the embedded development chain only.

The embedded chain (:mod:`anchoring.embedded`, an in-process EVM) has no HTTP endpoint of its own,
so visitors' browsers could not check anchors against it. This serves the few read methods the
in-browser verifier needs (:mod:`anchoring.rpc`); everything else is a JSON-RPC error. A real
deployment anchors to a real chain and points browsers at a public RPC endpoint of that chain
instead (``TENDERPROOF_PUBLIC_RPC_URL``); then this route answers 404.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

if TYPE_CHECKING:
    from anchoring.embedded import EmbeddedChain

#: Largest request body: one call of the methods served is a few hundred bytes.
MAX_BODY = 16_384


def _error(request_id: Any, code: int, message: str, status: int = 200) -> Response:
    body = {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status)


async def handle(request: Request, chain: EmbeddedChain | None) -> Response:
    """Answer one JSON-RPC request on ``chain`` (default: this process's embedded chain)."""
    body = await request.body()
    if len(body) > MAX_BODY:
        return _error(None, -32600, f"request larger than {MAX_BODY} bytes", status=413)
    try:
        message = json.loads(body)
    except ValueError:
        return _error(None, -32700, "parse error: the body is not JSON", status=400)
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0" or not isinstance(message.get("method"), str):
        return _error(None, -32600, "invalid request: one JSON-RPC 2.0 object (batches are not served)", status=400)
    from anchoring.rpc import RpcError, answer

    request_id = message.get("id")
    try:
        result = answer(chain, message["method"], message.get("params"))
    except RpcError as exc:
        return _error(request_id, exc.code, exc.message)
    return JSONResponse({"jsonrpc": "2.0", "id": request_id, "result": result})
