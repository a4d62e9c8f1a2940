"""The defects of issue 34 in `rnnlab translate`, each pinned (docs/RELIABILITY.md)."""

import gzip
import re
import zlib

import numpy as np
import pytest
from conftest import assert_one_line as one_line
from conftest import run_cli

from rnnlab.translate import corpus

LINES = "".join(f"sentence {i} here .\tphrase {i} ici .\n" for i in range(3000)).encode()


def fails_at(raw: bytes) -> int:
    """The offset of the byte whose arrival makes a fresh zlib gzip decompressor fail (a prefix
    that fails stays failing when it grows: a bisection)."""

    def bad(k):
        try:
            zlib.decompressobj(wbits=31).decompress(raw[:k])
        except zlib.error:
            return True
        return False

    lo, hi = 0, len(raw)  # raw[:lo] decodes, raw[:hi] fails
    assert bad(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if bad(mid) else (mid, hi)
    return hi - 1


def train(capsys, path, tmp_path):
    argv = ["translate", "train", "--pairs", str(path), "--out", str(tmp_path / "run"), "--epochs", "1"]
    return run_cli(argv, capsys)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_corrupt_gzip_corpus_is_one_line_naming_the_file_and_the_byte(capsys, tmp_path, seed):
    """A valid gzip header and random bytes ended in a zlib.error traceback."""
    rng = np.random.default_rng(seed)
    raw = gzip.compress(b"a\tb\n")[:10] + rng.bytes(5000)
    path = tmp_path / "garbage.gz"
    path.write_bytes(raw)
    code, _, err = train(capsys, path, tmp_path)
    one_line(code, err, str(path))
    assert int(re.search(r"at byte (\d+)", err).group(1)) == fails_at(raw)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("chunk", [1000, 1 << 16])
def test_a_flipped_byte_deep_in_a_gzip_corpus_is_found_where_zlib_finds_it(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(corpus, "GZIP_CHUNK", chunk)  # 1000: the flip lies chunks in
    raw = bytearray(gzip.compress(LINES))
    raw[len(raw) // 2] ^= 0xFF
    path = tmp_path / "flipped.gz"
    path.write_bytes(bytes(raw))
    with pytest.raises(corpus.UserError, match=f"at byte {fails_at(bytes(raw))}$"):
        corpus.read_pairs(path)


def test_a_truncated_gzip_corpus_or_trailing_garbage_is_one_line(tmp_path):
    raw = gzip.compress(LINES)
    path = tmp_path / "cut.gz"
    path.write_bytes(raw[: len(raw) - 20])
    with pytest.raises(corpus.UserError, match=f"truncated: .* at byte {len(raw) - 20} "):
        corpus.read_pairs(path)
    path.write_bytes(raw + b"junk")
    with pytest.raises(corpus.UserError, match=f"no gzip data at byte {len(raw)}$"):
        corpus.read_pairs(path)


def test_a_gzip_corpus_of_several_members_reads_as_gzip_reads_it(tmp_path):
    half = len(LINES) // 2
    raw = gzip.compress(LINES[:half]) + gzip.compress(LINES[half:])
    path = tmp_path / "two.gz"
    path.write_bytes(raw)
    assert corpus.gunzip(raw, path) == gzip.decompress(raw) == LINES
    assert len(corpus.read_pairs(path)) == 3000
