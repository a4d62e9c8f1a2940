"""`rnnlab translate serve`: the real server process on a free loopback port, talked to with a
real HTTP client: translations equal `Translator.translate`, attention on request, bad requests
answered with JSON errors (400, 413, 422) and the server still serving, concurrent requests all
right. Needs the ``serve`` extra (FastAPI, uvicorn, httpx)."""

import contextlib
import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from rnnlab.translate import Translator

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

WORDS = "le chat chien voit mange petit".split()
TESTS = ["le chat voit", "petit chien mange le chat", "chien", "inconnu voit !"]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    rng = np.random.default_rng(0)
    pairs = []
    for _ in range(200):
        s = list(rng.choice(WORDS, rng.integers(2, 5)))
        pairs.append((" ".join(s), " ".join(s[::-1])))
    tr = Translator(hidden_size=16, embedding_size=8, epochs=4, lr=3e-3, min_freq=1, seed=0).fit(pairs)
    path = tmp_path_factory.mktemp("serve") / "model"
    tr.save(path)
    return tr, path


def _serve(model_dir, port) -> list:
    """The command line of the real server process."""
    return [
        sys.executable,
        "-m",
        "rnnlab.cli",
        "translate",
        "serve",
        "--model",
        str(model_dir),
        "--port",
        str(port),
    ]


@contextlib.contextmanager
def running_server(model_dir, *extra, host=None):
    """The real server process on a free port (of ``--host host`` if given), answering /health:
    ``(url, stderr)``, where ``stderr()`` is what it wrote there so far (a file, not a pipe that
    could fill and stall it)."""
    port = _free_port()
    errors = tempfile.TemporaryFile(mode="w+")
    argv = [*_serve(model_dir, port), *(["--host", host] if host else []), *extra]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=errors)

    def stderr() -> str:
        errors.seek(0)
        return errors.read()

    url = f"http://{host or '127.0.0.1'}:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)
        if proc.poll() is not None:
            pytest.fail(f"the server exited: {stderr()}")
    else:
        proc.kill()
        pytest.fail("the server did not answer /health within 60 s")
    try:
        yield url, stderr
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        errors.close()


@pytest.fixture(scope="module")
def server(model):
    with running_server(model[1]) as (url, _):
        yield url


def test_translations_equal_the_translator(server, model):
    tr, _ = model
    r = httpx.post(server + "/translate", json={"text": TESTS}, timeout=30)
    assert r.status_code == 200
    assert r.json() == {"translations": tr.translate(TESTS)}
    r = httpx.post(server + "/translate", json={"text": TESTS, "beam": 3}, timeout=30)
    assert r.json()["translations"] == tr.translate(TESTS, beam_size=3)
    health = httpx.get(server + "/health").json()
    assert health["status"] == "ok" and health["model"]["cell"] == tr.cell


def test_attention_on_request_and_the_page(server, model):
    tr, _ = model
    r = httpx.post(server + "/translate", json={"text": ["le chat voit"], "attention": True}, timeout=30)
    body = r.json()
    (out,), (w,) = tr.translate(["le chat voit"], return_attention=True)
    assert body["translations"] == [out]
    heat = body["attention"][0]
    assert heat["source"] == ["le", "chat", "voit"] and heat["target"] == out.split() + ["<eos>"]
    np.testing.assert_allclose(heat["weights"], w, atol=1e-4)
    page = httpx.get(server + "/")
    assert page.status_code == 200 and "/translate" in page.text
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", page.text)  # nothing fetched: no CDN
    assert httpx.get(server + "/openapi.json").json()["paths"]["/translate"]


@pytest.mark.parametrize(
    "body,status,needle",
    [
        (b"{not json", 400, "not valid JSON"),
        (json.dumps({"text": []}).encode(), 422, "text"),
        (json.dumps({"text": ["a"] * 65}).encode(), 422, "text"),
        (json.dumps({"text": ["a" * 1001]}).encode(), 422, "1000 characters"),
        (json.dumps({"text": ["a"], "beam": 0}).encode(), 422, "beam"),
        (json.dumps({"text": 5}).encode(), 422, "text"),
        (json.dumps({"text": ["a"] * 64, "beam": 16}).encode(), 422, "sentence-beams"),
        (json.dumps({"words": ["a"]}).encode(), 422, "text"),
        (b"x" * (1 << 18 + 1), 413, "bytes"),
    ],
    ids=[
        "bad-json",
        "empty",
        "too-many",
        "too-long",
        "beam-0",
        "a-number",
        "too-much-work",
        "no-text",
        "too-big",
    ],
)
def test_bad_requests_get_json_errors_and_the_server_keeps_serving(server, body, status, needle):
    r = httpx.post(
        server + "/translate", content=body, headers={"Content-Type": "application/json"}, timeout=30
    )
    assert r.status_code == status
    assert needle in r.json()["error"] and "Traceback" not in r.text
    assert httpx.get(server + "/health").status_code == 200


def test_one_string_a_chunked_body_and_the_offline_docs(server, model):
    tr, _ = model
    r = httpx.post(server + "/translate", json={"text": TESTS[0]}, timeout=30)
    assert r.status_code == 200 and r.json()["translation"] == tr.translate([TESTS[0]])[0]

    def chunks():  # no Content-Length: 2 MiB in 64 KiB pieces, counted as they arrive
        for _ in range(32):
            yield b"x" * (1 << 16)

    r = httpx.post(server + "/translate", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "bytes" in r.json()["error"]
    docs = httpx.get(server + "/docs")
    assert docs.status_code == 200 and "/translate" in docs.text
    assert not re.search(r"<(script|link|img)\b", docs.text)  # nothing to fetch: works offline
    r = httpx.get(server + "/no-such-page")
    assert r.status_code == 404 and "error" in r.json()  # one error shape everywhere
    assert httpx.get(server + "/health").status_code == 200


def test_requests_arriving_together_are_decoded_together_a_full_queue_is_503_a_slow_one_504():
    """In process, with a translator that takes 0.2 s a call: 8 concurrent requests share a few
    decoding calls; with a queue of 1 the surplus is refused at once; past the time limit 504."""
    import threading

    from starlette.testclient import TestClient

    from rnnlab.translate.serve import create_app

    class Slow:
        attention = "none"

        def get_params(self):
            return dict(cell="gru", attention="none", hidden_size=1, num_layers=1)

        def translate(self, texts, beam_size=1):
            time.sleep(0.2)
            return [t.upper() for t in texts]

    app = create_app(Slow(), max_wait_ms=50)
    client = TestClient(app)
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda i: client.post("/translate", json={"text": [f"s{i}"]}), range(8)))
    assert [r.json()["translations"] for r in got] == [[f"S{i}"] for i in range(8)]
    assert app.app.state.batcher.batches <= 3  # not 8: batched
    small = TestClient(create_app(Slow(), queue_size=1, max_wait_ms=0))
    barrier = threading.Barrier(6)

    def burst(i):
        barrier.wait()
        return small.post("/translate", json={"text": ["x"]}).status_code

    with ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(burst, range(6)))
    assert 503 in codes and 200 in codes and set(codes) <= {200, 503}
    late = TestClient(create_app(Slow(), timeout_s=0.05))
    r = late.post("/translate", json={"text": ["x"]})
    assert r.status_code == 504 and "within" in r.json()["error"]


def test_concurrent_requests(server, model):
    tr, _ = model
    want = tr.translate(TESTS)

    def one(i):
        r = httpx.post(server + "/translate", json={"text": TESTS[i % 4 :] or TESTS}, timeout=60)
        return r.status_code, r.json()["translations"], i

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(40)))
    for code, got, i in results:
        assert code == 200 and got == (want[i % 4 :] or want)


def test_serve_a_missing_model_is_one_line(tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "rnnlab.cli", "translate", "serve", "--model", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2 and "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_the_page_in_headless_chromium_shows_the_translation(server, model, tmp_path):
    """The page at / translates ``?q=`` on load: Chromium's DOM after the scripts ran holds
    the translation and the attention heatmap (an SVG of one rect per weight)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium (Debian: apt-get install chromium; .ci/run installs it)")
    tr, _ = model
    text = "petit chien mange le chat"
    (out,), (w,) = tr.translate([text], return_attention=True)
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=15000"]
    url = server + "/?q=" + text.replace(" ", "%20")
    dom = subprocess.run(
        [chromium, *flags, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert f'<div id="out">{out}</div>' in dom
    assert 'id="attention"' in dom and dom.count("<rect") == w.size


def test_a_port_in_use_is_one_line_and_exit_2(model):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        res = subprocess.run(
            _serve(model[1], port),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "in use" in res.stderr
