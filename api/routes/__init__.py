"""The HTTP routes: ops probes at the root; under ``/api/v1`` the public reads and the officers' writes."""

from __future__ import annotations

from fastapi import APIRouter

from ..errors import COMMON_RESPONSES
from . import anchors, log, ocds, tenders, writes

#: Everything under ``/api/v1`` (mounted by :func:`api.app.create_app`).
api_router = APIRouter(responses=COMMON_RESPONSES)
api_router.include_router(log.router)
api_router.include_router(tenders.router)
api_router.include_router(anchors.router)
api_router.include_router(writes.router)
api_router.include_router(ocds.router)
