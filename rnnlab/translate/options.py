"""The options of `rnnlab translate train`: their defaults, and how a run's configuration is
resolved (defaults <- the saved ``config.json`` with ``--resume`` <- the command line), the
saved one type-checked before use.
"""

from __future__ import annotations

from pathlib import Path

from rnnlab.errors import UserError
from rnnlab.io import read_json_object
from rnnlab.translate.translator import RENAMED

# option -> (default, help); every train option is None on the command line so that an explicit
# value can be told from a default (with --resume the saved configuration fills the gaps)
TRAIN_DEFAULTS = {
    "pairs": None,
    "split_protocol": "sha1",
    "max_len": 10,
    "min_freq": 2,
    "lower": True,
    "reverse": False,
    "vocab": "bpe",  # measured: the best of 25 minutes (README, benchmarks/RESULTS.md)
    "vocab_size": 8000,
    "joint_vocab": False,
    "cell": "gru",
    "attention": "general",
    "bidirectional": True,
    "num_layers": 1,
    "hidden_size": 256,
    "embedding_size": 256,
    "input_feed": False,
    "dropout": 0.0,
    "teacher_forcing": 1.0,
    "epochs": 10,
    "time_budget": None,
    "batch_size": 64,
    "lr": 1e-3,
    "clip": 5.0,
    "lr_decay": 0.5,
    "early_stopping": 3,
    "valid_metric": "bleu",
    "average_last": 1,
    "seed": 0,
    "threads": None,
}
# a saved configuration without these keys is older than them: it was trained with these values
# (not today's defaults), so a resumed round-1/2 run keeps its word vocabulary and one direction
BEFORE: dict[str, bool | int | str] = {
    "reverse": False,
    "vocab": "word",
    "vocab_size": 8000,
    "joint_vocab": False,
    "valid_metric": "bleu",
}
ARCH = (
    "pairs",
    "split_protocol",
    "max_len",
    "min_freq",
    "lower",
    "reverse",
    "vocab",
    "vocab_size",
    "joint_vocab",
    "cell",
    "attention",
    "bidirectional",
    "num_layers",
    "hidden_size",
    "embedding_size",
    "input_feed",
)


def resolve(args):
    """defaults <- saved config.json (with --resume) <- options given on the command line."""
    out = Path(args.out)
    cfg = dict(TRAIN_DEFAULTS)
    given = {k: getattr(args, k) for k in TRAIN_DEFAULTS if getattr(args, k, None) is not None}
    if args.resume:
        saved_file = out / "config.json"
        if not saved_file.is_file():
            raise UserError(
                f"cannot resume: {saved_file} not found (was {out} written by 'translate train'?)"
            )
        try:
            saved = read_json_object(saved_file)["train"]
            saved = {RENAMED.get(k, k): v for k, v in saved.items()}  # a round-1 run too
            check_saved_types(saved)
        except (ValueError, KeyError, AttributeError, TypeError) as e:
            raise UserError(f"cannot resume: {saved_file} is corrupt ({e})") from None
        changed = [k for k in ARCH if k in given and given[k] != saved.get(k)]
        if changed:
            raise UserError(
                f"cannot resume with different {', '.join('--' + k.replace('_', '-') for k in changed)} "
                f"(the checkpoint was trained with {', '.join(f'{k}={saved.get(k)!r}' for k in changed)})"
            )
        cfg.update({k: v for k, v in BEFORE.items() if k not in saved})
        cfg.update({k: v for k, v in saved.items() if k in cfg})
    cfg.update(given)
    if cfg["attention"] in ("dot", "scaled_dot", "cosine") and cfg["bidirectional"]:
        raise UserError(
            f"--attention {cfg['attention']} compares decoder and encoder states directly and "
            "needs equal sizes: add --no-bidirectional or use general/additive"
        )
    if cfg["input_feed"] and cfg["attention"] == "none":
        raise UserError("--input-feed needs an attention score (not none)")
    return cfg


def check_saved_types(saved: dict) -> None:
    """A resumed run's saved options must have the types of the defaults (``ValueError``)."""
    for k, v in saved.items():
        default = TRAIN_DEFAULTS.get(k)
        if k not in TRAIN_DEFAULTS or v is None or default is None:
            continue
        kinds = (int, float) if isinstance(default, float) else (type(default),)
        if not isinstance(v, kinds) or (isinstance(v, bool) and not isinstance(default, bool)):
            raise ValueError(f"train[{k!r}] must be {type(default).__name__}, got {v!r:.40}")


def translator_params(cfg):
    """The ``Translator`` arguments among the resolved train options (those of its
    ``_PARAMS`` that the options set; threads and verbosity are the command's own)."""
    from rnnlab.translate.translator import Translator

    return {k: cfg[k] for k in Translator._PARAMS if k in cfg and k not in ("threads", "verbose")}
