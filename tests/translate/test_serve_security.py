"""`rnnlab translate serve` against clients that misbehave and text that attacks the page: a
client that sends half a request and stalls is answered 408 and dropped after ``--read-timeout``
while others are served; ``<script>`` and ``<img onerror>`` sent through the server reach
Chromium's DOM as text only, and run nothing; the server listens only on ``--host`` (default
127.0.0.1) and says where when it starts. Fixtures and helpers are test_serve.py's."""

import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse

import numpy as np
import pytest
import test_serve
from test_serve import _free_port, httpx, running_server

model = test_serve.model  # the fixture, reused

READ_TIMEOUT = 2.0
HALF_REQUESTS = {
    "nothing": b"",
    "half-a-request-line": b"GET /hea",
    "half-the-headers": b"POST /translate HTTP/1.1\r\nHost: x\r\nContent-Ty",
    "half-the-body": b"POST /translate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b'Content-Length: 100\r\n\r\n{"text": "le',
    "half-a-chunked-body": b"POST /translate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    b'5\r\n{"te',
}


@pytest.fixture(scope="module")
def impatient(model):
    with running_server(model[1], "--read-timeout", str(READ_TIMEOUT)) as (url, stderr):
        # the first decoding measures the GEMM choice (seconds, in a fresh cache): not in a test
        assert httpx.post(url + "/translate", json={"text": "le chat"}, timeout=120).status_code == 200
        yield url, stderr


def _stalled(url: str, data: bytes) -> socket.socket:
    host, port = urllib.parse.urlsplit(url).hostname, urllib.parse.urlsplit(url).port
    s = socket.create_connection((host, port), timeout=10 * READ_TIMEOUT)
    s.sendall(data)
    return s


def _until_closed(s: socket.socket) -> bytes:
    got = b""
    while chunk := s.recv(4096):
        got += chunk
    s.close()
    return got


def test_clients_that_stall_are_dropped_and_hold_up_no_one(impatient):
    """Two clients of each kind send part of a request and stall; meanwhile a whole request is
    answered at once; each stalled one gets a 408 JSON error and its connection closed within
    the read timeout (plus a margin for a busy machine), not before it."""
    url, stderr = impatient
    t0 = time.monotonic()
    stalled = [(kind, _stalled(url, sent)) for kind, sent in HALF_REQUESTS.items() for _ in range(2)]
    r = httpx.post(url + "/translate", json={"text": "le chat"}, timeout=10)
    served = time.monotonic() - t0
    assert r.status_code == 200 and served < READ_TIMEOUT, served  # not held up by the others
    for kind, s in stalled:
        head, _, body = _until_closed(s).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408 "), (kind, head)
        assert "did not arrive within" in json.loads(body)["error"], kind
        dropped = time.monotonic() - t0
        assert READ_TIMEOUT * 0.9 < dropped < READ_TIMEOUT + 3.0, (kind, dropped)
    assert httpx.get(url + "/health", timeout=10).status_code == 200
    assert "Traceback" not in stderr(), stderr()


def _one_response(s: socket.socket) -> bytes:
    """One whole response with a Content-Length (the server may send its head and its body in
    two writes, and a loaded machine then delivers them in two reads)."""
    got = b""
    while b"\r\n\r\n" not in got:
        got += s.recv(4096)
    head, _, body = got.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += s.recv(4096)
    return head + b"\r\n\r\n" + body


def test_the_next_request_on_a_kept_alive_connection_has_the_same_limit(impatient):
    url, _ = impatient
    s = _stalled(url, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    first = _one_response(s)
    assert first.startswith(b"HTTP/1.1 200 "), first
    t0 = time.monotonic()
    s.sendall(b"GET /heal")  # the second request, half of it
    rest = _until_closed(s)
    assert rest.startswith(b"HTTP/1.1 408 ") and time.monotonic() - t0 < READ_TIMEOUT + 3.0, rest


class Echo:
    """A stand-in translator whose translation is its input, so the attack reaches the page
    whole: as the translation and as the heatmap's labels."""

    attention = "general"

    def get_params(self):
        return dict(cell="gru", attention="general", hidden_size=1, num_layers=1)

    def translate(self, texts, beam_size=1):
        return list(texts)

    def explain(self, texts):
        heat = [np.full((1, len(t.split())), 0.5) for t in texts]  # (target 1, source words)
        return [
            {"translation": t, "source": t.split(), "target": [t], "weights": w} for t, w in zip(texts, heat)
        ]


@pytest.fixture(scope="module")
def echo_server():
    """The real app (create_app, the page) around ``Echo``, served by uvicorn in a thread."""
    uvicorn = pytest.importorskip("uvicorn")
    from rnnlab.translate.serve import create_app

    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(Echo()), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    assert srv.started, "the in-process server did not start"
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


ATTACK = (
    "<script>document.title='XSS-script'</script> "
    "<img src=x onerror=\"document.title='XSS-img'\"> "
    "<svg onload=\"document.title='XSS-svg'\"></svg>"
)


def test_markup_sent_through_the_server_is_only_text_in_chromiums_dom(echo_server, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium (Debian: apt-get install chromium; .ci/run installs it)")
    r = httpx.post(echo_server + "/translate", json={"text": ATTACK}, timeout=10)
    assert r.json()["translation"] == ATTACK  # the attack comes back whole
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=15000"]
    url = echo_server + "/?q=" + urllib.parse.quote(ATTACK)
    dom = subprocess.run(
        [chromium, *flags, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    as_text = ATTACK.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert f'<div id="out">{as_text}</div>' in dom, dom[-2000:]  # the translation, as text
    assert "<title>rnnlab translate</title>" in dom and "XSS-" not in dom.split("<body")[0]  # nothing ran
    assert dom.count("<script") == 1 and "<img" not in dom  # the page's own script, no element of ours
    labels = [w.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") for w in ATTACK.split()]
    assert all(f">{w}</text>" in dom for w in labels)  # the heatmap's labels, as text too


def _listening(port: int) -> set:
    """The addresses a socket listens on at ``port`` (IPv4 and IPv6), from /proc/net/tcp*."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            addr, hexport = local.split(":")
            if state == "0A" and int(hexport, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(addr)
                raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))  # host order
                found.add(socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw))
    return found


def test_the_server_listens_only_where_told_and_says_so(model, impatient):
    url, stderr = impatient  # started without --host
    port = urllib.parse.urlsplit(url).port
    assert stderr().splitlines()[0] == f"rnnlab translate serve: {url}/  (Ctrl-C to stop)"
    assert _listening(port) == {"127.0.0.1"}
    with running_server(model[1], host="127.0.0.2") as (url, stderr):
        port = urllib.parse.urlsplit(url).port
        assert stderr().splitlines()[0] == f"rnnlab translate serve: {url}/  (Ctrl-C to stop)"
        assert _listening(port) == {"127.0.0.2"}
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5)
