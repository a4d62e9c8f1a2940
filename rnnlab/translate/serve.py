"""`rnnlab translate serve`: a trained translator behind HTTP (FastAPI + uvicorn, ``rnnlab[serve]``).

    POST /translate  {"text": ["Tom is reading.", ...], "beam": 1, "attention": false}
                     -> {"translations": ["tom lit .", ...], "attention": [...] (when asked)}
    GET  /health     -> {"status": "ok", "model": {...}}
    GET  /           a page: type English, see the French and the attention heatmap (SVG, no CDN)
    GET  /docs       the OpenAPI page FastAPI makes (schema at /openapi.json)

Errors are JSON, never a traceback: invalid JSON 400, a body over ``max_bytes`` 413, a request
outside the schema (too many sentences, a sentence too long, a bad beam) 422, anything else
500 with one line; the server keeps serving. The translator is not thread-safe, so requests
run one at a time under a lock (FastAPI runs the endpoint on its thread pool); attention
weights come from greedy search, so a request asking for them uses beam 1.
"""

# no `from __future__ import annotations` here: FastAPI reads the endpoint's annotations as
# objects, and the request model is made inside create_app (its limits are arguments)
import threading
from pathlib import Path

PAGE = Path(__file__).with_name("serve_page.html")


def create_app(translator, max_sentences: int = 64, max_chars: int = 1000, max_bytes: int = 1 << 18):
    """The FastAPI application serving ``translator`` (a fitted ``Translator``)."""
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse
    from pydantic import BaseModel, Field

    class TranslateRequest(BaseModel):
        text: list[str] = Field(min_length=1, max_length=max_sentences)
        beam: int = Field(1, ge=1, le=16)
        attention: bool = False

    app = FastAPI(title="rnnlab translate", version="1", docs_url="/docs")
    lock = threading.Lock()
    info = {k: translator.get_params()[k] for k in ("cell", "attention", "hidden_size", "num_layers")}

    @app.middleware("http")
    async def limit_size(request: Request, call_next):
        size = request.headers.get("content-length")
        if size is not None and (not size.isdigit() or int(size) > max_bytes):
            return JSONResponse({"error": f"request body over {max_bytes} bytes"}, status_code=413)
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return JSONResponse({"error": "the body is not valid JSON"}, status_code=400)
        where = ".".join(str(p) for p in errors[0].get("loc", ())[1:]) if errors else ""
        msg = errors[0].get("msg", "invalid request") if errors else "invalid request"
        return JSONResponse({"error": f"{where}: {msg}" if where else msg}, status_code=422)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception):  # pragma: no cover - a bug, not input
        return JSONResponse({"error": f"internal error: {type(exc).__name__}"}, status_code=500)

    @app.get("/health")
    def health():
        return {"status": "ok", "model": info}

    @app.get("/", response_class=HTMLResponse)
    def page():
        return PAGE.read_text(encoding="utf-8")

    @app.post("/translate")
    def translate(req: TranslateRequest):
        too_long = [i for i, t in enumerate(req.text) if len(t) > max_chars]
        if too_long:
            return JSONResponse(
                {"error": f"text.{too_long[0]}: over {max_chars} characters"}, status_code=422
            )
        with lock:
            return _translate(translator, req.text, req.beam, req.attention)

    return app


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
