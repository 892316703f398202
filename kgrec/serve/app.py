"""The HTTP API of ``kgrec serve`` (FastAPI): ``POST /recommend``, ``POST /feedback``,
``POST /items``, ``GET /healthz``, ``GET /metrics`` (Prometheus text) and the OpenAPI page
at ``/docs``.

Every bad request gets a 4xx JSON body ``{"error": CODE, "message": ..., "field": ...}``
and never a 500: 400 malformed JSON, 401 missing or wrong bearer token (write endpoints,
when a token is set), 404 unknown user / request, 409 an item id that exists, 413 a body
over the size limit, 422 a well-formed request that cannot be served (unknown item ids, ``k``
out of range, a field of the wrong type, an unknown ``ranking`` or one this server lacks). A
500 means a bug.

``POST /recommend`` takes ``ranking``: ``personalised`` (default: the model, then the re-ranking
stage if the server runs one), ``popular`` or ``recent`` (the same list for everyone, not
based on profiling; see :mod:`kgrec.serve.ranking`). The response and the log name the
``ranking`` and the ``rerank`` stage that produced the list.

A ``/recommend`` response is sent only after its exposures are committed to the exposure
log (:mod:`kgrec.serve.log`), so a killed server cannot lose a list it has answered with.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

from kgrec.errors import KgrecInputError
from kgrec.serve.log import UnknownRequest
from kgrec.serve.ranking import PERSONALISED, RANKINGS
from kgrec.serve.service import EVENTS, Conflict, Invalid, NotFound, Service

MAX_BODY = 1 << 20  # bytes, default request body limit
MAX_HISTORY = 10_000
RawId = StrictStr | StrictInt
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0)


class RecommendBody(BaseModel):
    """A known user's raw id, or a new user's history (raw item ids, oldest first); with a
    non-profiling ``ranking`` neither is needed nor used."""

    model_config = ConfigDict(extra="forbid")
    user_id: RawId | None = None
    history: list[RawId] | None = Field(None, max_length=MAX_HISTORY)
    k: StrictInt = 10
    context: dict[str, Any] | None = None
    ranking: Literal[RANKINGS] = Field(  # type: ignore[valid-type]
        PERSONALISED, description="personalised (the model, default); popular or recent: the same list for "
        "everyone, not based on profiling (EU DSA Art. 38): user_id and history are not used, seen items are "
        "not excluded, no re-ranking")


class FeedbackBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    request_id: StrictStr
    item_id: RawId
    event: StrictStr = Field("click", description=f"one of {', '.join(EVENTS)}")
    value: StrictFloat | StrictInt = 1.0
    time: StrictFloat | StrictInt | None = Field(None, description="event time, seconds since the epoch")


class ItemBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item_id: RawId
    text: StrictStr | None = Field(None, max_length=100_000)
    links: dict[str, list[RawId]] | None = Field(None, description="relation path name → raw target ids")


def _error(status: int, code: str, message: str, field: str | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "message": message, "field": field}, status_code=status)


def _input_error(err: KgrecInputError) -> JSONResponse:
    status = {NotFound: 404, Conflict: 409, Invalid: 422}.get(type(err), 422)
    if isinstance(err, UnknownRequest):  # an unknown request id: 404; an item it did not show: 422
        status = 404 if err.field == "request_id" else 422
    code = {404: "not_found", 409: "conflict", 422: "invalid"}[status]
    return _error(status, code, err.message, err.field)


class Limits:
    """Pure ASGI middleware: the request body size limit (413) and the Prometheus counts.

    A body with a ``Content-Length`` over the limit is refused at once; a body without one
    (chunked) is read here first, counting its bytes, and replayed to the app if it fits."""

    def __init__(self, app: Any, *, max_body: int, metrics: dict[str, Any]) -> None:
        self.app, self.max_body, self.metrics = app, max_body, metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, path, status = time.perf_counter(), scope.get("path", ""), [500]
        length = dict(scope.get("headers") or []).get(b"content-length")
        too_large = _error(413, "too_large", f"request body over {self.max_body} bytes", None)
        if length is not None and length.isdigit() and int(length) > self.max_body:
            await too_large(scope, receive, send)
            self._count(path, 413, start)
            return
        if length is None:  # chunked: read the body first (the server holds a declared length to it)
            buffered, seen = [], 0
            while True:
                message = await receive()
                buffered.append(message)
                if message["type"] != "http.request":
                    break
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    await too_large(scope, receive, send)
                    self._count(path, 413, start)
                    return
                if not message.get("more_body", False):
                    break

            async def replay() -> dict:
                return buffered.pop(0) if buffered else await receive()

            receive = replay

        async def sending(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        await self.app(scope, receive, sending)
        self._count(path, status[0], start)

    def _count(self, path: str, status: int, start: float) -> None:
        endpoint = path if path in ENDPOINTS else "other"
        self.metrics["requests"].labels(endpoint, str(status)).inc()
        self.metrics["latency"].labels(endpoint).observe(time.perf_counter() - start)


ENDPOINTS = ("/recommend", "/feedback", "/items", "/healthz", "/metrics")


def create_app(service: Service, *, token: str | None = None, max_body: int = MAX_BODY) -> FastAPI:
    """The FastAPI app over ``service``; ``token``: the bearer token the write endpoints
    (``/feedback``, ``/items``) require (``None``: open)."""
    registry = CollectorRegistry()
    metrics = {
        "requests": Counter("kgrec_requests", "HTTP requests by endpoint and status", ["endpoint", "status"],
                            registry=registry),
        "latency": Histogram("kgrec_request_seconds", "request latency in seconds", ["endpoint"],
                             buckets=LATENCY_BUCKETS, registry=registry),
        "index": Gauge("kgrec_index_items", "items in the ANN index", registry=registry),
        "exposures": Counter("kgrec_exposures_logged", "exposures committed to the log", registry=registry),
        "explored": Counter("kgrec_lists_explored", "lists drawn by the policy's random branch", registry=registry),
    }
    metrics["index"].set_function(lambda: service.index.ntotal)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        service.close()  # stops the exposure log's writer thread

    app = FastAPI(title="kgrec serve", version="1", summary="real-time top-K with exposure logging",
                  description=__doc__, lifespan=lifespan)
    app.add_middleware(Limits, max_body=max_body, metrics=metrics)
    app.state.service = service
    adding = asyncio.Lock()  # one POST /items at a time: its id check, log write and index add

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {}
        if first.get("type") == "json_invalid":
            return _error(400, "malformed_json", f"the body is not valid JSON: {first.get('msg', '')}", None)
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
        return _error(422, "invalid", f"{where or 'body'}: {first.get('msg', 'invalid')}", where)

    @app.exception_handler(KgrecInputError)
    async def input_error(request: Request, exc: KgrecInputError) -> JSONResponse:
        return _input_error(exc)

    def authorise(request: Request) -> JSONResponse | None:
        if token is None:
            return None
        given = request.headers.get("authorization", "")
        if not given.startswith("Bearer ") or not secrets.compare_digest(given[7:].encode(), token.encode()):
            return _error(401, "unauthorized", "this endpoint needs 'Authorization: Bearer <token>'", None)
        return None

    @app.post("/recommend", summary="top-K for a known user, or a new user's history (fold-in)",
              response_class=JSONResponse)
    async def recommend(body: RecommendBody) -> JSONResponse:
        shown, record = service.served(body.user_id, body.history, body.k, body.context, body.ranking)
        if service.log is not None:
            await service.log.alog_request(record)
            metrics["exposures"].inc(len(record.items))
        if shown.explored:
            metrics["explored"].inc()
        return JSONResponse(shown.to_dict())  # built here: FastAPI's response encoding is not needed

    @app.post("/feedback", summary="an event (click, consume, ...) on an item of a served list")
    async def feedback(body: FeedbackBody, request: Request) -> Any:
        denied = authorise(request)
        if denied is not None:
            return denied
        record = service.feedback_record(body.request_id, body.item_id, body.event, body.value, body.time)
        await service.log.alog_feedback(record)
        return {"status": "logged", "request_id": record.request_id}

    @app.post("/items", status_code=201, summary="a new item from its text and KG links, retrievable at once")
    async def items(body: ItemBody, request: Request) -> Any:
        denied = authorise(request)
        if denied is not None:
            return denied
        async with adding:  # held across the await, so two requests cannot both pass the id check
            _, vector = service.new_item(body.item_id, body.text, body.links)
            if service.log is not None:
                await service.log.alog_item(str(body.item_id), body.model_dump(mode="json"))
            index = service.commit_item(str(body.item_id), vector)
        return {"status": "added", "item_id": str(body.item_id), "index": index}

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return service.health()

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
