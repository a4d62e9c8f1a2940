"""HTTP requests to the real server (`rnnlab translate serve` with a tiny model, the fixture of
tests/translate/test_serve.py): bodies of any JSON shape and of no JSON at all, content types,
nesting depth, sizes at and over the limits, control characters, NUL, lone surrogates, right-to-
left text, beam values. Every answer is a valid 200 or a 4xx whose body is ``{"error": "..."}``
(never a 5xx, never a traceback), and the server answers /health after each."""

import json
import os
import sys

import fuzz_helpers  # noqa: F401 - the Hypothesis profiles
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "translate"))
import test_serve  # noqa: E402

httpx = test_serve.httpx
model, server = test_serve.model, test_serve.server  # the fixtures, reused

ODD_TEXT = st.one_of(
    st.text(max_size=40),
    st.text(st.characters(codec=None, categories=["Cc", "Cs", "Cf", "Zl", "Zp", "Co"]), max_size=20),
    st.sampled_from(
        [
            "",
            "\x00",
            "le\x00chat",
            "\ud800",
            "chat \udfff voit",
            "\u202eevil\u202c",
            "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd",  # Hebrew
            "\u0645\u0631\u062d\u0628\u0627 \u200f!",  # Arabic, a right-to-left mark
            "\ufeffle chat",
            "a" * 1000,
            "a" * 1001,
            " ".join(["le chat"] * 400),
            "<script>alert(1)</script>",
        ]
    ),
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | ODD_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ODD_TEXT, inner, max_size=4),
    max_leaves=12,
)
BEAM = st.one_of(
    st.integers(-3, 20), st.sampled_from([2**31, 2**63, -(2**63), 1.0, 1.5, "2", "", None, True, [1]])
)
REQUEST = st.fixed_dictionaries(
    {},
    optional={
        "text": st.one_of(ODD_TEXT, st.lists(ODD_TEXT, max_size=70), JSON),
        "beam": BEAM,
        "attention": st.one_of(st.booleans(), JSON),
        "extra": JSON,
    },
)
CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "application/json; charset=latin-1",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json\x7f",
        "",
        None,
    ]
)


def _nested(depth: int, leaf: str) -> str:
    return "[" * depth + leaf + "]" * depth


BODIES = st.one_of(
    st.tuples(REQUEST, st.booleans()).map(
        lambda r: json.dumps(r[0], ensure_ascii=r[1]).encode("utf-8", "surrogatepass")
    ),
    st.binary(max_size=300),
    st.builds(_nested, st.sampled_from([10, 1000, 100_000]), st.just('"x"')).map(str.encode),
    st.builds(
        lambda d: ('{"text": ' + _nested(d, '"le chat"') + "}").encode(), st.sampled_from([1, 2, 50, 10_000])
    ),
    st.sampled_from([b"", b"null", b"[]", b'"le chat"', b"{}", b'{"text": "a"' + b" " * (1 << 18)]),
    st.integers(0, 64).map(lambda n: json.dumps({"text": ["le chat voit"] * n, "beam": 4}).encode()),
)


@settings(max_examples=4 * settings.default.max_examples)  # cheap: ci 100, long 1600
@given(
    BODIES,
    CONTENT_TYPES,
    st.sampled_from(["POST"] * 8 + ["GET", "PUT", "DELETE", "OPTIONS"]),
    st.sampled_from(["/translate"] * 8 + ["/translate/", "/translate?x=<a>", "/%00", "/health/../translate"]),
)
def test_any_request_gets_a_translation_or_a_json_error_and_the_server_stays_up(
    server, body, content_type, method, path
):
    headers = {} if content_type is None else {"Content-Type": content_type}
    r = httpx.request(method, server + path, content=body, headers=headers, timeout=30)
    assert r.status_code == 200 or 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    answer = r.json()
    if r.status_code == 200 and path.startswith("/translate") and method == "POST":
        sent = json.loads(body)
        texts = [sent["text"]] if isinstance(sent["text"], str) else sent["text"]
        assert isinstance(answer["translations"], list) and len(answer["translations"]) == len(texts)
        assert all(isinstance(t, str) for t in answer["translations"])
    elif r.status_code != 200:
        assert list(answer) == ["error"] and isinstance(answer["error"], str), answer
        assert "Traceback" not in answer["error"] and "\n" not in answer["error"], answer
    health = httpx.get(server + "/health", timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "ok"


@pytest.mark.parametrize("beam", [1, 16])
def test_the_largest_request_allowed_is_answered(server, beam):
    """At the limits (64 sentences of 1000 characters at beam 1; 16 x 16 at beam 16): 200."""
    n = 64 if beam == 1 else 16
    r = httpx.post(server + "/translate", json={"text": ["le chat " * 125] * n, "beam": beam}, timeout=60)
    assert r.status_code == 200 and len(r.json()["translations"]) == n, r.text[:300]
