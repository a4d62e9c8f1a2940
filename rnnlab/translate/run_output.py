"""`rnnlab translate run` for pipelines: standard input in batches, text or JSON lines out.

    rnnlab translate run --model M < in.txt > out.txt           one translation a line
    rnnlab translate run --model M --n-best 5 --beam 5          i ||| translation ||| score (Moses)
    rnnlab translate run --model M --format jsonl --output o.jsonl
        {"source": ..., "translation": ..., "score": ..., "n_best": [...], "attention": ...}

Standard input is read ``--batch-lines`` lines at a time and each batch is translated in one
call (the translator sorts it by length), so a long file streams: its first translations appear
before the file is read to the end. ``--output FILE`` is written atomically (a temporary file
renamed at the end): an interrupted run leaves no half file. ``score`` is the length-normalised
log-probability beam search ranks by (``search.beam_search``); greedy output has none. On
stderr (unless ``--quiet``): sentences and sentences per second.
"""

from __future__ import annotations

import itertools
import json
import sys
import time

from rnnlab.errors import UserError
from rnnlab.io import atomic_write, output_file_problem


def check(args) -> None:
    """The options agree, and ``--output`` can be written; one line and exit 2 otherwise."""
    if args.n_best is not None and args.n_best > args.beam:
        raise UserError(f"--n-best {args.n_best} needs --beam {args.n_best} or more (got --beam {args.beam})")
    if args.n_best is not None and args.beam < 2:
        raise UserError("--n-best needs beam search: add --beam K (K >= 2)")
    if args.attention and args.format != "jsonl":
        raise UserError("--attention goes with --format jsonl")
    if args.attention and (args.beam != 1 or args.n_best):
        raise UserError("--attention comes from greedy search: drop --beam / --n-best")
    if args.output is not None:
        problem = output_file_problem(args.output, "")  # the folder exists and takes a file
        if problem:
            raise UserError(f"--output: {problem}")


def stdin_batches(stream, lines: int):
    """Lists of at most ``lines`` lines of ``stream`` (newlines stripped)."""
    it = (line.rstrip("\n") for line in stream)
    while True:
        batch = list(itertools.islice(it, lines))
        if not batch:
            return
        yield batch


def translate_all(tr, batches, args) -> list:
    """Translate every batch and write it (``args.output`` or stdout) as ``args.format``;
    returns the source lines. Nothing is written when every line is blank."""
    sources: list = []
    out_lines: list = []
    t0 = time.perf_counter()
    pending: list = []  # blank lines before the first text: held until there is something
    for batch in batches:
        if not any(t.strip() for t in pending + batch):
            pending += batch
            continue
        batch, pending = pending + batch, []
        lines = _lines(tr, batch, args, len(sources))
        sources += batch
        if args.output is None:
            sys.stdout.write("".join(x + "\n" for x in lines))
            sys.stdout.flush()
        else:
            out_lines += lines
    if not sources:
        return []
    if args.output is not None:
        text = "".join(x + "\n" for x in out_lines)

        def write(tmp):
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(text)

        atomic_write(args.output, write)
    seconds = time.perf_counter() - t0
    if not args.quiet:
        where = f" -> {args.output}" if args.output else ""
        print(
            f"rnnlab translate run: {len(sources)} sentences in {seconds:.1f} s "
            f"({len(sources) / max(seconds, 1e-9):.1f} sentences/s, beam {args.beam}){where}",
            file=sys.stderr,
        )
    return sources


def _lines(tr, batch: list, args, first: int) -> list:
    """The output lines of one batch of sources (``first``: the index of its first sentence)."""
    if args.n_best:
        best = tr.translate_nbest(batch, args.n_best, beam_size=args.beam, length_penalty=args.length_penalty)
        if args.format == "text":
            return [f"{first + i} ||| {t} ||| {s:.6f}" for i, hyps in enumerate(best) for t, s in hyps]
        return [
            _json(src, hyps[0][0] if hyps else "", hyps[0][1] if hyps else None, hyps)
            for src, hyps in zip(batch, best)
        ]
    if args.attention:
        found = tr.explain(batch)
        return [
            _json(src, e["translation"] if e else "", None, None, _weights(e)) for src, e in zip(batch, found)
        ]
    outs = tr.translate(batch, beam_size=args.beam, length_penalty=args.length_penalty)
    if args.format == "text":
        return list(outs)
    return [_json(src, o) for src, o in zip(batch, outs)]


def _json(source, translation, score=None, n_best=None, attention=None) -> str:
    obj = {"source": source, "translation": translation}
    if score is not None:
        obj["score"] = round(float(score), 6)
    if n_best is not None:
        obj["n_best"] = [{"translation": t, "score": round(float(s), 6)} for t, s in n_best]
    if attention is not None:
        obj["attention"] = attention
    return json.dumps(obj, ensure_ascii=False)


def _weights(e):
    if e is None:
        return None
    return {"source": e["source"], "target": e["target"], "weights": e["weights"].round(4).tolist()}
