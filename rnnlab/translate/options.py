"""The options of `rnnlab translate train`: their defaults, and how a run's configuration is
resolved (defaults <- the saved ``config.json`` with ``--resume`` <- the command line), the
saved one type-checked before use.
"""

from __future__ import annotations

from pathlib import Path

from rnnlab.errors import UserError
from rnnlab.io import read_json_object
from rnnlab.translate.params import RENAMED, SAME, TRAIN

# option -> default (params.TABLE); every train option is None on the command line so that an
# explicit value can be told from a default (with --resume the saved configuration fills the gaps)
TRAIN_DEFAULTS = {p.name: p.cli_default for p in TRAIN}
# a saved configuration without these keys is older than them: it was trained with these values
# (not today's defaults), so a resumed round-1/2 run keeps its word vocabulary and one direction
BEFORE: dict[str, bool | int | str] = {p.name: p.before for p in TRAIN if p.before is not SAME}
ARCH = tuple(p.name for p in TRAIN if p.fixed)  # what a resumed run must keep


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
    if cfg["target_lang"] is None and cfg["pairs"] is None:  # the bundled pairs: English-French
        cfg["target_lang"] = "en" if cfg["reverse"] else "fr"
    if cfg["attention"] in ("dot", "scaled_dot", "cosine") and cfg["bidirectional"]:
        raise UserError(
            f"--attention {cfg['attention']} compares decoder and encoder states directly and "
            "needs equal sizes: add --no-bidirectional or use general/additive"
        )
    if cfg["input_feed"] and cfg["attention"] == "none":
        raise UserError("--input-feed needs an attention score (not none)")
    return cfg


def check_saved_types(saved: dict) -> None:
    """A resumed run's saved options must have their rows' types (``ValueError``); one whose
    default is None (pairs, time_budget, threads) is not checked."""
    rows = {p.name: p for p in TRAIN}
    for k, v in saved.items():
        p = rows.get(k)
        if p is None or v is None or p.cli_default is None:
            continue
        kinds = (int, float) if p.type is float else (p.type,)
        if not isinstance(v, kinds) or (isinstance(v, bool) and p.type is not bool):
            raise ValueError(f"train[{k!r}] must be {p.type.__name__}, got {v!r:.40}")


def translator_params(cfg):
    """The ``Translator`` arguments among the resolved train options (threads, and verbosity,
    are the command's own)."""
    return {p.name: cfg[p.name] for p in TRAIN if p.argument and p.name != "threads"}
