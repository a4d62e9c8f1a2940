"""The parallel corpus: reading, normalisation, the train / valid / test split, references.

Normalisation (the yardstick's protocol, ``shared/reference/README.md``)::

    lower-case (optional), narrow and no-break spaces -> spaces, Unicode NFC,
    a space around each of . ! ? , ; : " « » ( ) ¿ ¡ , split on whitespace

Split, deterministic and **by distinct English sentence**, so that no English sentence (with
all its French translations) is in two splits::

    bucket(en) = int(sha1(en).hexdigest(), 16) % 100      0 -> test, 1 -> valid, else train

``protocol="sha1"`` hashes the raw English string (exactly the yardstick's rule);
``"sha1-normalized"`` hashes the normalised English tokens instead, so that two raw spellings
that normalise alike ("Go." and "go.") cannot straddle splits either.
Evaluation groups the pairs of a split by normalised English sentence: every French
translation of a sentence is a reference.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import unicodedata
from importlib import resources
from pathlib import Path

from rnnlab.errors import UserError

PUNCT = re.compile(r'([.!?,;:"«»()¿¡])')
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


def read_pairs(path=None) -> list[tuple[str, str]]:
    """(English, French) pairs from a ``source<TAB>target[<TAB>...]`` file, .gz or plain.

    ``path=None`` reads the bundled corpus. Blank lines are skipped; a non-blank line without
    a tab, a missing file or bad UTF-8 raise ``UserError`` naming the file and line.
    """
    path = bundled_path() if path is None else Path(path)
    if not path.is_file():
        raise UserError(f"corpus file not found: {path}")
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        text = raw.decode("utf-8")
    except (OSError, EOFError, gzip.BadGzipFile) as e:
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
        pairs.append((fields[0], fields[1]))
    if not pairs:
        raise UserError(f"corpus {path} has no sentence pairs")
    return pairs


def split_pairs(pairs, protocol: str = "sha1", lower: bool = True) -> dict[str, list]:
    """{'train': [...], 'valid': [...], 'test': [...]} of raw (English, French) pairs."""
    out = {"train": [], "valid": [], "test": []}
    for en, fr in pairs:
        out[split_of(en, protocol, lower)].append((en, fr))
    return out


def tokenize_pairs(pairs, max_len: int | None = 10, lower: bool = True):
    """Normalised (src tokens, tgt tokens) pairs with at most ``max_len`` tokens on both sides
    and at least one on each. Returns ``(kept, n_dropped)``."""
    kept, dropped = [], 0
    for en, fr in pairs:
        se, sf = normalize(en, lower), normalize(fr, lower)
        if not se or not sf or (max_len is not None and (len(se) > max_len or len(sf) > max_len)):
            dropped += 1
            continue
        kept.append((se, sf))
    return kept, dropped


def group_references(tok_pairs) -> dict[str, list[str]]:
    """{normalised source sentence: [every normalised target translation]} in first-seen order."""
    refs: dict[str, list[str]] = {}
    for se, sf in tok_pairs:
        refs.setdefault(" ".join(se), []).append(" ".join(sf))
    return refs
