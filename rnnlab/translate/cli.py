"""`rnnlab translate train | eval | run`: English -> French (or any pair) with attention, on the command line.

    rnnlab translate train --out runs/fr --bidirectional --attention general --time-budget 25
    rnnlab translate eval --model runs/fr --beam 5 --report fr.json
    rnnlab translate run --model runs/fr "How are you?" --attention-plot a.png

Thin: it parses, builds a ``Translator``, shows progress and writes the model, the resolved
configuration (``config.json``), reports and plots. Data: the bundled Tatoeba pairs unless
``--pairs`` names a ``source<TAB>target`` file (.gz or plain).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from rnnlab import cliargs, distributed
from rnnlab.errors import UserError
from rnnlab.io import check_target_dir, owned_names, read_json_object, write_dir, write_json, write_report
from rnnlab.nn import runtime
from rnnlab.stale import OWNER_GRACE_SECONDS, clean_stale
from rnnlab.translate import cli_tools, corpus, precision, run_output, train_args
from rnnlab.translate.cli_tools import load_translator
from rnnlab.translate.options import TRAIN_DEFAULTS, check_saved_types, resolve, translator_params
from rnnlab.translate.params import METRIC_NAMES, RENAMED
from rnnlab.translate.plots import plot_attention
from rnnlab.translate.storage import OWNED, RUN_FORMAT, is_translator_dir
from rnnlab.translate.translator import Translator


def add_parser(subparsers):
    p = subparsers.add_parser(
        "translate", help="English -> French seq2seq with attention", description=__doc__.splitlines()[0]
    )
    sub = p.add_subparsers(dest="action", metavar="{train,eval,run,export,serve,average}")
    sub.required = True
    _add_train_parser(sub)
    _add_eval_parser(sub)
    _add_run_parser(sub)
    cli_tools.add_parsers(sub)
    return p


def _add_train_parser(sub):
    """``translate train``: the data, model and training options (every default None)."""
    t = sub.add_parser("train", help="train a translator, checkpoint every epoch, write DIR")
    train_args.add_data_arguments(t)
    train_args.add_model_arguments(t)
    train_args.add_training_arguments(t)
    t.set_defaults(func=cmd_train)


def _add_eval_parser(sub):
    """``translate eval``: a model directory, the split or pairs, the search, the report."""
    e = sub.add_parser("eval", help="corpus BLEU and chrF (sacrebleu) on a split")
    e.add_argument("--model", required=True, metavar="DIR", action="append", help=ENSEMBLE_HELP)
    e.add_argument("--split", choices=("test", "valid", "train"), default="test", help="(default: test)")
    e.add_argument("--pairs", metavar="PATH", help="evaluate this file instead (all of it)")
    e.add_argument(
        "--corpus",
        metavar="PATH",
        help="the file the model was trained on (its --pairs), whose --split is evaluated; "
        "needed for such a model: rnnlab never opens a path named in a model directory",
    )
    e.add_argument(
        "--beam", type=cliargs.bounded_int(100), default=1, help="beam size; 1 = greedy (default: 1)"
    )
    e.add_argument(
        "--length-penalty",
        type=cliargs.nonnegative_float,
        default=1.0,
        help="beam search: alpha of ((5 + |Y|) / 6) ** alpha (default: 1)",
    )
    e.add_argument("--samples", type=cliargs.nonnegative_int, default=5, help="sample translations shown")
    e.add_argument(
        "--sacrebleu-tokenize",
        choices=("13a", "intl", "char", "zh", "ja-mecab", "ko-mecab", "none"),
        default="13a",
        help="sacrebleu's tokenisation of the detokenised score (default: 13a; zh, ja-mecab, char "
        "for scripts without spaces)",
    )
    e.add_argument(
        "--report",
        metavar="FILE.json",
        type=cliargs.output_file(".json"),
        help="write the scores and samples here (- : standard output; the rest then goes to stderr)",
    )
    precision.add_argument(e)
    e.set_defaults(func=cmd_eval)


def _add_run_parser(sub):
    """``translate run``: a model directory, the sentences, the search, the attention plot."""
    r = sub.add_parser("run", help="translate text arguments, or each line of standard input")
    r.add_argument("--model", required=True, metavar="DIR", action="append", help=ENSEMBLE_HELP)
    r.add_argument("text", nargs="*", help="sentences (default: read lines from standard input)")
    r.add_argument(
        "--beam", type=cliargs.bounded_int(100), default=1, help="beam size; 1 = greedy (default: 1)"
    )
    r.add_argument(
        "--length-penalty",
        type=cliargs.nonnegative_float,
        default=1.0,
        help="beam search length penalty alpha (default: 1)",
    )
    r.add_argument(
        "--attention-plot",
        metavar="FILE.png",
        type=cliargs.output_file(".png"),
        help="attention heatmap of the first sentence",
    )
    r.add_argument(
        "--output", metavar="FILE", default=None, help="write the translations here (default: stdout)"
    )
    r.add_argument(
        "--format",
        choices=("text", "jsonl"),
        default="text",
        help="text: one translation a line (with --n-best: 'i ||| translation ||| score', Moses' n-best "
        "format); jsonl: one JSON object a line (source, translation, score, n_best, attention)",
    )
    r.add_argument(
        "--n-best",
        type=cliargs.bounded_int(100),
        default=None,
        metavar="K",
        help="the K best translations (beam search)",
    )
    r.add_argument(
        "--attention", action="store_true", help="with --format jsonl: the attention weights (greedy)"
    )
    r.add_argument(
        "--batch-lines",
        type=cliargs.bounded_int(100_000),
        default=256,
        help="lines of standard input translated together (default 256)",
    )
    r.add_argument("--quiet", action="store_true", help="no prompt and no closing speed line on stderr")
    precision.add_argument(r)
    r.set_defaults(func=cmd_run)


# ----------------------------------------------------------------------------- helpers


def _threads(n):
    """rnnlab's own threads (output layer, softmax, Adam; default: the CPUs, at most 4) and
    BLAS held at one thread: the big GEMMs are split by rnnlab, and threaded BLAS on the many
    small GEMMs of the time loops is slower (and collapses when the machine is shared)."""
    if n is None:
        try:
            n = len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - not Linux
            n = os.cpu_count() or 1
        n = max(1, min(n // distributed.local_ranks(), 4))  # MPI: the ranks on this machine share it
    runtime.set(threads=1)
    return n


ENSEMBLE_HELP = "a directory written by train; give --model several times to decode with their ensemble"


# ----------------------------------------------------------------------------- commands


def cmd_train(args):
    cfg = resolve(args)
    threads = _threads(cfg["threads"])
    out = Path(args.out)
    root = distributed.world().is_root  # under MPI only rank 0 checks, writes and prints
    if root:
        _check_out(out, args)
    pairs = corpus.read_pairs(cfg["pairs"], reverse=cfg["reverse"])
    split = corpus.split_pairs(pairs, cfg["split_protocol"], cfg["lower"])
    run_cfg = {"format": RUN_FORMAT, "train": cfg, "command": "rnnlab translate " + " ".join(sys.argv[2:])}
    if root and not args.resume:  # a fresh run: nothing of an older run mixes in, no other file is lost
        owned = owned_names(out, is_translator_dir, OWNED)
        write_dir(out, lambda tmp: write_json(os.path.join(tmp, "config.json"), run_cfg), owned=owned)

    def save_config():
        """A resumed run's config.json, once its checkpoint loaded: a refused resume changes nothing."""
        if args.resume and root:
            write_json(out / "config.json", run_cfg)

    tr = Translator(**translator_params(cfg), threads=threads, verbose=1 if args.quiet else 2)
    if root:
        print(
            f"data: {len(pairs)} pairs -> train {len(split['train'])}, valid {len(split['valid'])}, "
            f"test {len(split['test'])} (split by source sentence, protocol {cfg['split_protocol']})"
            + (f"; {distributed.world().size} ranks, each a shard of every batch" if not _single() else "")
        )
    t0 = time.time()
    try:
        tr.fit(split["train"], valid=split["valid"], checkpoint_dir=out / "checkpoint", resume=args.resume)
    except KeyboardInterrupt:
        save_config()
        print(
            f"rnnlab translate: interrupted; the last finished epoch is saved in {out / 'checkpoint'}: "
            f"continue with 'rnnlab translate train --out {out} --resume'",
            file=sys.stderr,
        )
        return 130
    save_config()
    if root:
        tr.save(out)
        _print_done(tr, out, t0)
    return 0


def _single() -> bool:
    return distributed.world().size == 1


def _check_out(out, args):
    """Refuse an ``--out`` that holds something else, or a run that ``--resume`` should continue."""
    check_target_dir(out, is_translator_dir, "--out", "translator", args.overwrite)
    if not args.resume and not args.overwrite and (out / "checkpoint" / "state.json").exists():
        raise UserError(
            f"{out} already holds a training run: add --resume to continue it, or choose another --out"
        )
    for folder in (out, out / "epochs"):  # the run owns them: what a killed save left there goes
        clean_stale(folder, min_age=OWNER_GRACE_SECONDS)


def _print_done(tr, out, t0):
    """The closing line of ``translate train``: epochs, speed, best BLEU, where the model is."""
    tokens = sum(h["tokens"] for h in tr.history_)
    train_s = sum(h["seconds"] for h in tr.history_)
    print(
        f"done: {tr.n_epochs_} epochs ({tr.stop_reason_}), {tr.train_seconds_:.0f} s in all, "
        f"{tokens / max(train_s, 1e-9):.0f} target tokens/s while training "
        f"({tokens / max(tr.train_seconds_, 1e-9):.0f} counting validation); "
        f"best valid {METRIC_NAMES[tr.valid_metric]} "
        f"{tr.best_bleu_ if tr.best_bleu_ is not None else float('nan'):.2f} (epoch {tr.best_epoch_}); "
        f"model in {out} [{time.time() - t0:.0f} s this run]"
    )


def _eval_pairs(tr, model_dir, args):
    """The pairs ``translate eval`` scores (the model's split of its corpus, or ``--pairs``,
    in the model's direction) and their name."""
    cfg_file = Path(model_dir) / "config.json"
    cfg = dict(TRAIN_DEFAULTS)
    if cfg_file.is_file():
        try:
            saved = read_json_object(cfg_file)["train"]
            cfg.update({RENAMED.get(k, k): v for k, v in saved.items()})
            check_saved_types(saved)
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise UserError(f"{cfg_file} is corrupt ({e})") from None
    reverse = bool(cfg["reverse"])
    if args.pairs:
        return corpus.read_pairs(args.pairs, reverse=reverse), args.pairs
    if cfg["split_protocol"] not in corpus.PROTOCOLS:
        raise UserError(f"{cfg_file} is corrupt (split_protocol {cfg['split_protocol']!r})")
    if cfg["pairs"] is not None and args.corpus is None:  # never open a path read from a model file
        raise UserError(
            f"{model_dir} was trained on {cfg['pairs']}: name that file with --corpus PATH to "
            f"evaluate its {args.split} split (or evaluate a whole file with --pairs PATH)"
        )
    cfg["pairs"] = args.corpus if cfg["pairs"] is not None else None
    pairs = corpus.read_pairs(cfg["pairs"], reverse=reverse)
    name = f"{cfg['pairs'] or 'bundled fra-eng'}{' reversed' if reverse else ''}"
    split = corpus.split_pairs(pairs, cfg["split_protocol"], tr.lower)[args.split]
    return split, f"{name} [{args.split} split, {cfg['split_protocol']}]"


def cmd_eval(args):
    tr = load_translator(args.model, args.precision)
    pairs, name = _eval_pairs(tr, args.model[0], args)
    res = tr.evaluate(
        pairs,
        args.beam,
        args.length_penalty,
        n_samples=args.samples,
        sacrebleu_tokenize=args.sacrebleu_tokenize,
    )
    res = {"data": name, "model": [str(m) for m in args.model], **res, "length_penalty": args.length_penalty}
    search = "greedy" if args.beam == 1 else f"beam {args.beam}, length penalty {args.length_penalty:g}"
    print(f"{name}: {res['n_sentences']} source sentences ({res['n_references']} references), {search}")
    sb, case = res["sacrebleu"], "cased" if res["cased"] else "lower-cased model"
    print(f"sacreBLEU {sb['bleu']:.2f}   chrF {sb['chrf']:.2f}   ({case}, detokenised)   {sb['signature']}")
    print(
        f"BLEU {res['bleu']:.2f}   chrF {res['chrf']:.2f}   (lower-cased tokens: the yardstick's protocol, "
        f"as in earlier rounds)   <unk> {100 * res['unk_share']:.2f}% of output tokens   "
        f"({res['decode_seconds']:.1f} s to translate, {res['sentences_per_second']:.0f} sentences/s)"
    )
    for s in res["samples"]:
        print(f"  {s['source']}\n    -> {s['output']}\n    ref {s['references'][0]}")
    if args.report:
        write_report(args.report, res)  # strict JSON; a non-finite number is null, with the reason
        print(f"report: {args.report}")
    return 0


def cmd_run(args):
    run_output.check(args)
    texts = list(args.text)
    if texts and not any(t.strip() for t in texts):
        raise UserError("the text to translate is empty")
    if not texts and sys.stdin.isatty() and not args.quiet:
        print("rnnlab translate run: type sentences, one per line (Ctrl-D to end)", file=sys.stderr)
    batches = [texts] if texts else run_output.stdin_batches(sys.stdin, args.batch_lines)
    tr = load_translator(args.model, args.precision)
    done = run_output.translate_all(tr, batches, args)
    if not done:
        raise UserError("no text to translate (give sentences as arguments or on standard input)")
    if not texts:
        texts = done
    if args.attention_plot:
        first = next((t for t in texts if t.strip()), None)
        if first is None:
            raise UserError("every sentence is empty: no attention to plot")
        if tr.attention == "none":
            raise UserError("this model has no attention (trained with --attention none): nothing to plot")
        (e,) = tr.explain([first])
        words = " ".join(corpus.normalize(first, tr.lower))
        plot_attention(
            e["source"],
            e["target"][:-1],
            e["weights"],
            args.attention_plot,
            title=f"{words}\n-> {e['translation']}",
        )
        print(f"attention plot: {args.attention_plot}", file=sys.stderr)
    return 0
