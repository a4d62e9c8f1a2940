"""`rnnlab translate serve`: a trained translator behind HTTP (FastAPI + uvicorn, ``rnnlab[serve]``).

    POST /translate  {"text": "Tom is reading." | ["Tom is reading.", ...], "beam": 1, "attention": false}
                     -> {"translations": ["tom lit .", ...], "attention": [...] (when asked)}
                        (and "translation": "..." when "text" was one string)
    GET  /health     -> {"status": "ok", "model": {...}, "queued": n}
    GET  /           a page: type English, see the French and the attention heatmap (SVG, no CDN)
    GET  /docs       the API, as a page that loads nothing (schema at /openapi.json)

**Dynamic batching.** One worker thread owns the translator (it is not thread-safe). Requests
wait in a bounded queue; when the worker is free it takes every request waiting (and, with
``max_wait_ms`` > 0, whatever else arrives that long after the first) up to ``max_batch``
sentences, and decodes the sentences of every request with the same beam in one call: requests
that arrive while a batch decodes are decoded together next, one model in memory. By default
nothing waits for company: waiting gained nothing and cost a lone client its wait
(benchmarks/RESULTS.md, the server's table). A full queue answers 503; a
request not answered within ``timeout_s`` gets 504
(if it had not started it is dropped); a request's work (sentences x beam) is bounded before it
is queued, so no request holds the worker for long.

Errors are JSON ``{"error": "..."}``, never a traceback: invalid JSON 400, a body over
``max_bytes`` 413 (counted as it arrives, chunked bodies too), a request outside the schema
422, queue full 503, time limit 504, anything else 500 with one line; the server keeps serving.
Attention weights come from greedy search, so a request asking for them uses beam 1.

**Slow clients.** uvicorn closes an idle kept-alive connection after ``timeout_keep_alive``
seconds but has no limit on how long a request may take to arrive: a client that sends half a
request and stalls held its connection for ever. ``run`` serves with ``ReadTimeout``, uvicorn's
h11 protocol with one timer more: a request must arrive whole (its line, headers and body)
within ``read_timeout_s`` of its first byte, or of the connection; else the client gets 408
(``{"error": ...}``) and the connection is closed. Other clients are not held up meanwhile
(one event loop serves every connection).
"""

# no `from __future__ import annotations` here: FastAPI reads the endpoint's annotations as
# objects, and the request model is made inside create_app (its limits are arguments)
import html
import json
import queue
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Annotated

PAGE = Path(__file__).with_name("serve_page.html")


class Job:
    """One request's sentences, its decoding options and the future its answer is set on."""

    def __init__(self, texts, beam, attention):
        self.texts, self.beam, self.attention = texts, beam, attention
        self.future: Future = Future()


class Batcher:
    """The worker thread and its bounded queue (module docstring)."""

    def __init__(self, translator, max_batch=64, max_wait_ms=0.0, queue_size=64):
        self.translator, self.max_batch, self.max_wait = translator, max_batch, max_wait_ms / 1000
        self.queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self.batches = 0  # decoding calls made (for /health and the tests)
        threading.Thread(target=self._run, name="rnnlab-translate-batcher", daemon=True).start()

    def submit(self, job: Job) -> bool:
        """Queue ``job``; False when the queue is full."""
        try:
            self.queue.put_nowait(job)
            return True
        except queue.Full:
            return False

    def _run(self):
        while True:
            jobs = [self.queue.get()]
            n, deadline = len(jobs[0].texts), time.monotonic() + self.max_wait
            while n < self.max_batch:  # what waits already, then what arrives before the deadline
                left = deadline - time.monotonic()
                try:
                    jobs.append(self.queue.get_nowait() if left <= 0 else self.queue.get(timeout=left))
                except queue.Empty:
                    break
                n += len(jobs[-1].texts)
            live = [j for j in jobs if j.future.set_running_or_notify_cancel()]  # timed out: dropped
            for key in dict.fromkeys((j.beam, j.attention) for j in live):
                self._decode([j for j in live if (j.beam, j.attention) == key])

    def _decode(self, jobs):
        """One decoding call for the sentences of ``jobs`` (same beam and attention), split back."""
        texts = [t for j in jobs for t in j.texts]
        try:
            out = _translate(self.translator, texts, jobs[0].beam, jobs[0].attention)
        except Exception as e:  # noqa: BLE001 - every waiting request gets an answer
            for j in jobs:
                j.future.set_exception(e)
            return
        self.batches += 1
        start = 0
        for j in jobs:
            part = {k: v[start : start + len(j.texts)] for k, v in out.items()}
            start += len(j.texts)
            j.future.set_result(part)


class BodyLimit:
    """ASGI middleware: a body over ``max_bytes`` is refused (413) by ``Content-Length`` or,
    for a chunked body, as its bytes arrive; nothing past the limit is kept."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        size = dict(scope.get("headers") or []).get(b"content-length")
        if size is not None and (not size.isdigit() or int(size) > self.max_bytes):
            return await _json(send, 413, f"request body over {self.max_bytes} bytes")
        seen, over = 0, False

        async def counted():
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    over = True
                    return {"type": "http.disconnect"}  # the app stops reading
            return message

        started = False

        async def watched_send(message):
            nonlocal started
            if over and not started:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched_send)
        except Exception:
            if not over:
                raise
        if over and not started:
            await _json(send, 413, f"request body over {self.max_bytes} bytes")


async def _json(send, status: int, error: str):
    body = json.dumps({"error": error}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def create_app(
    translator,
    max_sentences: int = 64,
    max_chars: int = 1000,
    max_bytes: int = 1 << 18,
    max_work: int = 256,
    max_batch: int = 64,
    max_wait_ms: float = 0.0,
    queue_size: int = 64,
    timeout_s: float = 30.0,
):
    """The FastAPI application serving ``translator`` (a fitted ``Translator``). ``max_work``:
    the most sentences x beam one request may ask for."""
    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse, JSONResponse
    from pydantic import BaseModel, Field

    Sentences = Annotated[list[str], Field(min_length=1, max_length=max_sentences)]

    class TranslateRequest(BaseModel):
        text: str | Sentences  # one sentence, or a list of them
        beam: int = Field(1, ge=1, le=16)
        attention: bool = False

    # no redirect of /translate/ to /translate: a 307 with an empty body, not the one error shape
    app = FastAPI(
        title="rnnlab translate", version="1", docs_url=None, redoc_url=None, redirect_slashes=False
    )
    batcher = Batcher(translator, max_batch, max_wait_ms, queue_size)
    app.state.batcher = batcher
    info = {k: translator.get_params()[k] for k in ("cell", "attention", "hidden_size", "num_layers")}

    def error(status: int, text: str):
        return JSONResponse({"error": text}, status_code=status)

    _error_handlers(app, error)

    @app.get("/health")
    def health():
        return {"status": "ok", "model": info, "queued": batcher.queue.qsize()}

    @app.get("/", response_class=HTMLResponse)
    def page():
        return PAGE.read_text(encoding="utf-8")

    @app.get("/docs", response_class=HTMLResponse)
    def docs():
        return _docs_page(app.openapi())

    @app.post("/translate")
    async def translate(req: TranslateRequest):
        return await _answer(batcher, req, max_chars, max_work, timeout_s, error)

    return BodyLimit(app, max_bytes)


def run(app, host: str, port: int, read_timeout_s: float = 10.0, keep_alive_s: int = 5) -> None:
    """Serve ``app`` on ``host:port`` with uvicorn until interrupted (module docstring: slow
    clients)."""
    import uvicorn

    http = read_timeout_protocol(read_timeout_s)
    uvicorn.run(app, host=host, port=port, log_level="warning", http=http, timeout_keep_alive=keep_alive_s)


def read_timeout_protocol(read_timeout_s: float):
    """uvicorn's h11 protocol whose requests must arrive whole within ``read_timeout_s``."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    body = json.dumps({"error": f"the request did not arrive within {read_timeout_s:g} s"}).encode()
    too_slow = (
        b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
        + b"content-length: %d\r\n\r\n" % len(body)
        + body
    )
    received = (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR)

    class ReadTimeout(H11Protocol):
        timer = None

        def connection_made(self, transport):
            super().connection_made(transport)
            self.timer = self.loop.call_later(read_timeout_s, self.too_slow)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state in received:  # whole: the request's own time limit runs
                self.stop_timer()
            elif self.timer is None:  # the next request on a kept-alive connection began
                self.timer = self.loop.call_later(read_timeout_s, self.too_slow)

        def connection_lost(self, exc):
            self.stop_timer()
            super().connection_lost(exc)

        def stop_timer(self):
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None

        def too_slow(self):
            self.timer = None
            if self.transport.is_closing():
                return
            if self.cycle is None or self.cycle.response_complete or not self.cycle.response_started:
                self.transport.write(too_slow)
            self.transport.close()

    return ReadTimeout


async def _answer(batcher, req, max_chars: int, max_work: int, timeout_s: float, error):
    """A request's answer: its sentences checked, queued, decoded with whatever arrives with
    them (``Batcher``), or the error (422, 503, 504) as ``error(status, text)``."""
    import asyncio

    one = isinstance(req.text, str)
    texts = [req.text] if one else list(req.text)
    too_long = [i for i, t in enumerate(texts) if len(t) > max_chars]
    if too_long:
        where = "text" if one else f"text.{too_long[0]}"
        return error(422, f"{where}: over {max_chars} characters")
    beam = 1 if req.attention else req.beam
    if len(texts) * beam > max_work:
        return error(422, f"text x beam: {len(texts)} x {beam} is over the {max_work} sentence-beams allowed")
    job = Job(texts, beam, req.attention)
    if not batcher.submit(job):
        return error(503, f"busy: {batcher.queue.maxsize} requests are waiting; try again shortly")
    try:
        out = await asyncio.wait_for(asyncio.wrap_future(job.future), timeout_s)
    except asyncio.TimeoutError:
        return error(504, f"not answered within {timeout_s:g} s (the server is overloaded)")
    return {**out, "translation": out["translations"][0]} if one else out


def _error_handlers(app, error) -> None:
    """Every error as ``error(status, text)``: invalid JSON 400, outside the schema 422 (the
    first error, of the type the client sent for "text"), 404/405 ..., anything else 500."""
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return error(400, "the body is not valid JSON")
        # "text" is a string or a list: report the branch of the type the client sent
        sent_list = [
            e for e in errors if isinstance(e.get("input"), list) and "list[str]" in e.get("loc", ())
        ]
        first = (sent_list or errors or [{}])[0]
        where = ".".join(str(p) for p in first.get("loc", ())[1:] if p not in ("str", "list[str]"))
        msg = first.get("msg", "invalid request")
        return error(422, f"{where}: {msg}" if where else msg)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):  # 404, 405 ...: one body shape
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception):  # pragma: no cover - a bug, not input
        return error(500, f"internal error: {type(exc).__name__}")


def _docs_page(spec: dict) -> str:
    """The API as plain HTML (no script, no stylesheet from anywhere): each path, its method and
    summary, and the request body's schema."""
    rows = []
    for path, methods in spec.get("paths", {}).items():
        for method, op in methods.items():
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            ref = (body or {}).get("$ref", "").rsplit("/", 1)[-1]
            schema = spec.get("components", {}).get("schemas", {}).get(ref) if ref else body
            rows.append(
                f"<h2>{html.escape(method.upper())} {html.escape(path)}</h2>"
                f"<p>{html.escape(op.get('summary', ''))}</p>"
                + (f"<pre>{html.escape(json.dumps(schema, indent=2))}</pre>" if schema else "")
            )
    title = html.escape(spec.get("info", {}).get("title", "API"))
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head><body>"
        f"<h1>{title}</h1><p>The schema as JSON: <a href='/openapi.json'>/openapi.json</a></p>"
        + "".join(rows)
        + "</body></html>"
    )


def _translate(translator, texts, beam, attention) -> dict:
    import warnings

    with warnings.catch_warnings():  # empty sentences are translated as "" (said in the API doc)
        warnings.simplefilter("ignore")
        if not attention or translator.attention == "none":
            return {"translations": translator.translate(texts, beam_size=beam)}
        found = translator.explain(texts)
    heat = [
        None
        if e is None
        else {"source": e["source"], "target": e["target"], "weights": e["weights"].round(4).tolist()}
        for e in found
    ]
    return {"translations": [e["translation"] if e else "" for e in found], "attention": heat}
