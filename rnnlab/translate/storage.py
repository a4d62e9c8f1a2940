"""What ``Translator`` writes to disk, nothing pickled: the model directory of ``save`` and
``load``, and the per-epoch training checkpoint of ``fit``.

A model directory holds ``model.safetensors`` (the weights) and ``translator.json`` (the
format tag, arguments, model configuration, both vocabularies and the training history).

A checkpoint directory (``fit(..., checkpoint_dir=...)``, written after every epoch, read back
by ``fit(..., resume=True)``) holds ``model.safetensors`` (the current weights),
``optimizer.safetensors`` (Adam's moments and step), ``best.safetensors`` (the best validation
epoch's weights, rewritten when that epoch is the current one) and ``state.json`` (the training
state -- epoch, elapsed seconds, best BLEU and epoch, epochs without gain, history -- with the
arguments, both vocabularies and the dropout generator's state).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safetensors import SafetensorError

from rnnlab.errors import UserError
from rnnlab.io import read_tensors, write_json, write_tensors
from rnnlab.translate.training import rng_state, set_rng_state
from rnnlab.translate.vocab import Vocab

if TYPE_CHECKING:
    from rnnlab.translate.translator import Translator

FORMAT = "rnnlab.translate/1"
# the names of round 1, accepted (with a DeprecationWarning) for one release
RENAMED = {"layers": "num_layers", "hidden": "hidden_size", "emb": "embedding_size"}
# the arguments a resumed run must share with its checkpoint
ARCHITECTURE = (
    "cell",
    "attention",
    "bidirectional",
    "num_layers",
    "hidden_size",
    "embedding_size",
    "input_feed",
    "dtype",
)


def write_model_dir(tr: Translator, path: Path) -> None:
    """Write the fitted ``tr``'s ``model.safetensors`` and ``translator.json`` into ``path``."""
    path.mkdir(parents=True, exist_ok=True)
    write_tensors(path / "model.safetensors", tr.model_.state_dict())
    write_json(
        path / "translator.json",
        {
            "format": FORMAT,
            "params": tr.get_params(),
            "model": tr.model_.config(),
            "src_vocab": tr.src_vocab_.itos,
            "tgt_vocab": tr.tgt_vocab_.itos,
            "fitted": {
                "history": tr.history_,
                "best_epoch": tr.best_epoch_,
                "best_bleu": tr.best_bleu_,
                "n_epochs": tr.n_epochs_,
                "train_seconds": tr.train_seconds_,
                "stop_reason": tr.stop_reason_,
            },
        },
    )


def read_model_dir(cls: type[Translator], path: Path) -> Translator:
    """A fitted ``cls`` from a directory written by ``write_model_dir``; a missing or corrupt
    one raises ``UserError``."""
    if not path.is_dir():
        raise UserError(f"model directory not found: {path}")
    meta_file, weights_file = path / "translator.json", path / "model.safetensors"
    for f in (meta_file, weights_file):
        if not f.is_file():
            raise UserError(f"{path} is not a translator model directory: {f.name} is missing")
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT:
            raise ValueError(f"format {meta.get('format')!r}, expected {FORMAT!r}")
        saved = {RENAMED.get(k, k): v for k, v in meta["params"].items()}  # round-1 models too
        params = {k: v for k, v in saved.items() if k in cls._PARAMS}
        self = cls(**params)
        self.src_vocab_, self.tgt_vocab_ = Vocab(meta["src_vocab"]), Vocab(meta["tgt_vocab"])
        self.model_ = self._build_model()
        self.model_.load_state_dict(read_tensors(weights_file))
        fitted = meta["fitted"]
    except (ValueError, KeyError, TypeError, SafetensorError, OSError) as e:
        raise UserError(f"corrupt model directory {path}: {type(e).__name__}: {e}") from None
    self.history_, self.best_epoch_, self.best_bleu_ = (
        fitted["history"],
        fitted["best_epoch"],
        fitted["best_bleu"],
    )
    self.n_epochs_, self.train_seconds_ = fitted["n_epochs"], fitted["train_seconds"]
    self.stop_reason_ = fitted["stop_reason"]
    self.model_.eval()
    return self


def save_checkpoint(tr: Translator, ckpt: Path, opt, st: dict[str, Any], best_state) -> None:
    """Write ``tr``'s weights, ``opt``'s state, the best weights (when this epoch is the best)
    and the training state ``st`` into ``ckpt``."""
    write_tensors(ckpt / "model.safetensors", tr.model_.state_dict())
    write_tensors(ckpt / "optimizer.safetensors", opt.state_dict())
    if best_state is not None and st["best_epoch"] == st["epoch"]:
        write_tensors(ckpt / "best.safetensors", best_state)
    write_json(
        ckpt / "state.json",
        {
            **st,
            "format": FORMAT,
            "params": tr.get_params(),
            "src_vocab": tr.src_vocab_.itos,
            "tgt_vocab": tr.tgt_vocab_.itos,
            "rng": rng_state(tr.model_.rng),
        },
    )


def _read_checkpoint(ckpt: Path):
    """The checkpoint's state.json, weights, optimizer state and best weights (or None);
    a missing or unreadable file raises ``UserError``."""
    try:
        meta = json.loads((ckpt / "state.json").read_text(encoding="utf-8"))
        weights = read_tensors(ckpt / "model.safetensors")
        ostate = read_tensors(ckpt / "optimizer.safetensors")
        best = read_tensors(ckpt / "best.safetensors") if (ckpt / "best.safetensors").exists() else None
    except FileNotFoundError as e:
        raise UserError(f"cannot resume: no checkpoint in {ckpt} ({Path(e.filename).name} missing)") from None
    except (OSError, ValueError, SafetensorError) as e:
        raise UserError(f"cannot resume: the checkpoint in {ckpt} is corrupt ({e})") from None
    return meta, weights, ostate, best


def _check_compatible(tr: Translator, meta: dict) -> None:
    """Raise ``UserError`` unless the checkpoint has ``tr``'s vocabularies and architecture."""
    if meta.get("src_vocab") != tr.src_vocab_.itos or meta.get("tgt_vocab") != tr.tgt_vocab_.itos:
        raise UserError(
            "cannot resume: the training data or max-len/min-freq/lower changed since the "
            "checkpoint (the vocabularies differ)"
        )
    saved = {RENAMED.get(k, k): v for k, v in meta["params"].items()}  # round-1 checkpoints too
    diff = [k for k in ARCHITECTURE if saved.get(k) != getattr(tr, k)]
    if diff:
        raise UserError(f"cannot resume: the architecture differs from the checkpoint's in {diff}")


def load_checkpoint(tr: Translator, ckpt: Path, opt):
    """Restore ``tr``'s weights, ``opt``'s state and the dropout generator from ``ckpt``;
    returns the training state and the best weights (or None)."""
    meta, weights, ostate, best = _read_checkpoint(ckpt)
    _check_compatible(tr, meta)
    try:
        tr.model_.load_state_dict(weights)
        opt.load_state_dict(ostate)
    except (KeyError, ValueError) as e:
        raise UserError(f"cannot resume: the checkpoint does not fit this model ({e})") from None
    set_rng_state(tr.model_.rng, meta["rng"])
    st = {k: meta[k] for k in ("epoch", "elapsed", "best_bleu", "best_epoch", "bad_epochs", "history")}
    st["stop_reason"] = None
    return st, best
