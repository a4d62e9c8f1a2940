"""The parallel corpus: reading, normalisation, the train / valid / test split, references.

Normalisation (the yardstick's protocol, ``shared/reference/README.md``, for any script)::

    lower-case (optional), narrow and no-break spaces -> spaces, Unicode NFC,
    a space around each of . ! ? , ; : " « » ( ) ¿ ¡  and around the sentence punctuation
    of the non-Latin scripts (。、「」！？ ، ؟ । ...), split on whitespace

On Latin-script text (the bundled English-French pairs among it) this is exactly the
yardstick's rule: the added characters start at U+0370 and leave the General Punctuation block
alone (``tests/translate/test_language_pairs.py`` checks every bundled pair). Lower-casing is
``str.lower`` (Unicode-aware; scripts without case pass unchanged). Scripts written without
spaces (Japanese, Chinese) give long "words": train them with ``--vocab unigram|bpe``.

Split, deterministic and **by distinct source sentence** (English, on the bundled pairs), so
that no source sentence (with all its translations) is in two splits::

    bucket(src) = int(sha1(src).hexdigest(), 16) % 100      0 -> test, 1 -> valid, else train

``protocol="sha1"`` hashes the raw source string (exactly the yardstick's rule);
``"sha1-normalized"`` hashes the normalised source tokens instead, so that two raw spellings
that normalise alike ("Go." and "go.") cannot straddle splits either.
Evaluation groups the pairs of a split by normalised source sentence: every translation of a
sentence is a reference.
"""

from __future__ import annotations

import hashlib
import io
import re
import unicodedata
import zlib
from importlib import resources
from pathlib import Path

from rnnlab.errors import UserError

YARDSTICK_PUNCT = '.!?,;:"«»()¿¡'


def _other_scripts_punctuation() -> str:
    """Sentence punctuation of the scripts past Latin (Greek's ;, Arabic's ، ؟, Devanagari's
    ।, CJK's 。、「」, full-width ！？ ...): Unicode categories Po Ps Pe Pi Pf from U+0370 on,
    the General Punctuation block (U+2000-U+206F: ’ – … which Latin text keeps in its words,
    as the yardstick does) left out; dashes (Pd) and connectors (Pc) too."""
    return "".join(
        chr(c)
        for c in range(0x370, 0x10000)
        if unicodedata.category(chr(c)) in ("Po", "Ps", "Pe", "Pi", "Pf") and not 0x2000 <= c <= 0x206F
    )


PUNCT = re.compile("([" + re.escape(YARDSTICK_PUNCT + _other_scripts_punctuation()) + "])")
PROTOCOLS = ("sha1", "sha1-normalized")
BUNDLED = "fra-eng.tsv.gz"


def normalize(text: str, lower: bool = True) -> list[str]:
    """Tokens of ``text`` under the protocol above (the yardstick's ``norm``)."""
    if lower:
        text = text.lower()
    text = unicodedata.normalize("NFC", text.replace("\u202f", " ").replace("\xa0", " "))
    return PUNCT.sub(r" \1 ", text).split()


def bucket(english: str) -> int:
    """sha1 bucket in [0, 100) of a string (UTF-8)."""
    return int(hashlib.sha1(english.encode("utf-8")).hexdigest(), 16) % 100


def split_of(english: str, protocol: str = "sha1", lower: bool = True) -> str:
    """'test', 'valid' or 'train' for an English sentence."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"split protocol must be one of {PROTOCOLS}, got {protocol!r}")
    key = english if protocol == "sha1" else " ".join(normalize(english, lower))
    b = bucket(key)
    return "test" if b == 0 else "valid" if b == 1 else "train"


def bundled_path() -> Path:
    """The Tatoeba fra-eng pairs shipped with rnnlab (CC-BY 2.0, see rnnlab/data/README.md)."""
    return Path(str(resources.files("rnnlab.data").joinpath(BUNDLED)))


def read_pairs(path=None, reverse: bool = False) -> list[tuple[str, str]]:
    """(source, target) pairs from a ``source<TAB>target[<TAB>...]`` file, .gz or plain
    (``reverse``: (target, source), e.g. French -> English from the bundled file).

    ``path=None`` reads the bundled corpus. Blank lines are skipped; a non-blank line without
    a tab, a missing file or bad UTF-8 raise ``UserError`` naming the file and line.
    """
    path = bundled_path() if path is None else Path(path)
    if not path.is_file():
        raise UserError(f"corpus file not found: {path}")
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gunzip(raw, path)
        text = raw.decode("utf-8")
    except OSError as e:
        raise UserError(f"cannot read corpus {path}: {e}") from None
    except UnicodeDecodeError as e:
        raise UserError(f"corpus {path} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    pairs = []
    for lineno, line in enumerate(io.StringIO(text), 1):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2:
            raise UserError(f"{path}:{lineno}: expected 'source<TAB>target', found no tab in {line[:60]!r}")
        pairs.append((fields[1], fields[0]) if reverse else (fields[0], fields[1]))
    if not pairs:
        raise UserError(f"corpus {path} has no sentence pairs")
    return pairs


GZIP_CHUNK = 1 << 16


def gunzip(raw: bytes, path) -> bytes:
    """The gzip members of ``raw``, one after another (as ``gzip.decompress``); header, data and
    trailer (CRC-32, length) checked. A corrupt or truncated file is a ``UserError`` naming the
    byte offset (from 0) where its compressed data first stops making sense."""
    out, start = [], 0
    while start < len(raw):
        if raw[start : start + 2] != b"\x1f\x8b":
            raise UserError(f"corpus {path} is corrupt: bytes that are no gzip data at byte {start}")
        d, pos = zlib.decompressobj(wbits=31), start
        while not d.eof:
            if pos >= len(raw):
                raise UserError(
                    f"corpus {path} is truncated: its gzip data ends at byte {len(raw)} before the end marker"
                )
            chunk, before = raw[pos : pos + GZIP_CHUNK], d.copy()
            try:
                out.append(d.decompress(chunk))
            except zlib.error as e:
                reason, at = str(e).split(": ", 1)[-1], pos + _first_bad(before, chunk)
                raise UserError(f"corpus {path} is corrupt: {reason} at byte {at}") from None
            pos += len(chunk) - len(d.unused_data)
        start = pos
    return b"".join(out)


def _first_bad(d, chunk: bytes) -> int:
    """The index of the byte of ``chunk`` at which the decompressor ``d`` fails."""
    for i in range(len(chunk)):
        try:
            d.decompress(chunk[i : i + 1])
        except zlib.error:
            return i
    return len(chunk) - 1  # (not reached: the whole chunk failed)


def split_pairs(pairs, protocol: str = "sha1", lower: bool = True) -> dict[str, list]:
    """{'train': [...], 'valid': [...], 'test': [...]} of raw (English, French) pairs."""
    out: dict[str, list] = {"train": [], "valid": [], "test": []}
    for en, fr in pairs:
        out[split_of(en, protocol, lower)].append((en, fr))
    return out


def tokenize_pairs(pairs, max_len: int | None = 10, lower: bool = True):
    """Normalised (src tokens, tgt tokens) pairs with at most ``max_len`` tokens on both sides
    and at least one on each. Returns ``(kept, n_dropped)``."""
    pairs = list(pairs)
    kept = [(se, sf) for _, _, se, sf in kept_pairs(pairs, max_len, lower)]
    return kept, len(pairs) - len(kept)


def kept_pairs(pairs, max_len: int | None = 10, lower: bool = True):
    """``(src, tgt, src tokens, tgt tokens)`` of the raw pairs ``tokenize_pairs`` keeps."""
    out = []
    for en, fr in pairs:
        se, sf = normalize(en, lower), normalize(fr, lower)
        if se and sf and (max_len is None or (len(se) <= max_len and len(sf) <= max_len)):
            out.append((en, fr, se, sf))
    return out


def group_references(tok_pairs) -> dict[str, list[str]]:
    """{normalised source sentence: [every normalised target translation]} in first-seen order."""
    refs: dict[str, list[str]] = {}
    for se, sf in tok_pairs:
        refs.setdefault(" ".join(se), []).append(" ".join(sf))
    return refs
