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

Both are written as a whole (``rnnlab.io.write_dir``: a fresh directory beside the old one,
then one swap), so a kill leaves the previous epoch's checkpoint or this one's, never a mix;
and read back with every JSON key type-checked, sizes bounded, tensors checked against the
configuration and NaN/inf weights refused.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import os
import shutil
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safetensors import SafetensorError

from rnnlab.errors import UserError
from rnnlab.io import (
    check_finite,
    check_schema,
    json_format,
    owned_names,
    read_json_object,
    read_tensors,
    write_dir,
    write_json,
    write_tensors,
)
from rnnlab.translate import truecase
from rnnlab.translate.options import BEFORE
from rnnlab.translate.params import ARCHITECTURE, BY_NAME, RENAMED, SIZES
from rnnlab.translate.subword import SubwordVocab
from rnnlab.translate.training import rng_state, set_rng_state
from rnnlab.translate.vocab import Vocab

if TYPE_CHECKING:
    from rnnlab.translate.translator import Translator

FORMAT, FORMAT_VERSION = "rnnlab-translator", 1
LEGACY_FORMATS = ("rnnlab.translate/1", "")  # read, never written
RUN_FORMAT = "rnnlab-translate-run"  # the config.json of a ``translate train --out`` directory
OWNED = ("config.json", "checkpoint", "epochs", "model.safetensors", "translator.json")  # what we write there
RUN_ENTRIES = ("config.json", "checkpoint", "epochs")  # a training run's, kept when its model is saved
MAX_VOCAB = 1_000_000
# what the JSON of a model and of a checkpoint must hold
MODEL_SCHEMA = {"params": "dict", "src_vocab": "list", "tgt_vocab": "list", "fitted": "dict"}
FITTED_SCHEMA = {"history": "list", "best_epoch": "int", "best_bleu": "number|null"}
FITTED_SCHEMA.update(n_epochs="int", train_seconds="number", stop_reason="str|null")
STATE_SCHEMA = {"params": "dict", "src_vocab": "list", "tgt_vocab": "list", "rng": "dict"}
STATE_SCHEMA.update(epoch="int", elapsed="number", best_bleu="number", best_epoch="int")
STATE_SCHEMA.update(bad_epochs="int", history="list")


def renamed(params: dict, where: str) -> dict:
    """``params`` with round-1 names (layers, hidden, emb) replaced, warning once about them."""
    old = [k for k in params if k in RENAMED]
    if old:
        warnings.warn(
            f"{where}: {', '.join(f'{k}= is now {RENAMED[k]}=' for k in old)} (the old "
            "names go in the next release)",
            DeprecationWarning,
            stacklevel=3,
        )
    return {RENAMED.get(k, k): v for k, v in params.items()}


def is_translator_dir(path) -> bool:
    """A directory written by ``translate train`` or ``save``, known by a format marker and
    nothing else: a model's ``translator.json``, a run's ``config.json`` or (a run of an
    earlier release) its ``checkpoint/state.json``. A ``config.json`` that merely looks like
    ours (a ``"train"`` key) is someone else's."""
    path = Path(path)
    return (
        json_format(path / "translator.json") in (FORMAT, LEGACY_FORMATS[0])
        or json_format(path / "config.json") == RUN_FORMAT
        or json_format(path / "checkpoint" / "state.json") == FORMAT
    )


def write_model_dir(tr: Translator, path: Path, keep=RUN_ENTRIES, fitted=None) -> None:
    """Write the fitted ``tr``'s ``model.safetensors`` and ``translator.json`` as the directory
    ``path``, all or nothing; the entries named in ``keep`` come along from the old one.
    ``fitted``: the training record to store (default: ``tr``'s, once ``fit`` has ended)."""
    state = tr._one_model().state_dict()
    check_finite(state, "the model to save")
    if fitted is None:
        fitted = {
            "history": tr.history_,
            "best_epoch": tr.best_epoch_,
            "best_bleu": tr.best_bleu_,
            "n_epochs": tr.n_epochs_,
            "train_seconds": tr.train_seconds_,
            "stop_reason": tr.stop_reason_,
            "average": tr.averaged_,
        }
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "params": tr.get_params(),
        "model": tr._one_model().config(),
        **vocab_meta(tr),
        "fitted": fitted,
    }

    def fill(tmp):
        write_tensors(os.path.join(tmp, "model.safetensors"), state)
        write_json(os.path.join(tmp, "translator.json"), meta)

    write_dir(path, fill, keep, owned=owned_names(path, is_translator_dir, OWNED))


def save_epoch_model(tr: Translator, folder: Path, st: dict[str, Any], keep_last: int) -> None:
    """Epoch ``st["epoch"]``'s weights as a model directory ``folder/<epoch>`` (what ``translate
    average`` reads), then only the last ``keep_last`` epochs' directories kept: the others
    named by an epoch number and holding a translator are removed, nothing else."""
    epoch = st["epoch"]
    score = st["history"][-1].get(f"valid_{tr.valid_metric}") if st["history"] else None
    fitted = {"history": st["history"], "best_epoch": epoch, "best_bleu": score, "n_epochs": epoch}
    fitted.update(train_seconds=st["elapsed"], stop_reason=f"epoch {epoch} of a run", average=None)
    folder.mkdir(parents=True, exist_ok=True)
    write_model_dir(tr, folder / str(epoch), keep=(), fitted=fitted)
    old = sorted(int(d.name) for d in folder.iterdir() if d.name.isdigit() and is_translator_dir(d))
    for e in old[:-keep_last]:
        shutil.rmtree(folder / str(e))


def vocab_meta(tr: Translator) -> dict:
    """Both vocabularies for a JSON file: their pieces, and a subword model's SentencePiece
    protobuf (base64) under ``"subword"``."""
    meta: dict[str, Any] = {"src_vocab": tr.src_vocab_.itos, "tgt_vocab": tr.tgt_vocab_.itos}
    if tr.truecaser_ is not None:
        meta["truecase"] = tr.truecaser_.forms()
    if isinstance(tr.src_vocab_, SubwordVocab) and isinstance(tr.tgt_vocab_, SubwordVocab):
        meta["subword"] = {
            "kind": tr.src_vocab_.kind,
            "src": base64.b64encode(tr.src_vocab_.proto).decode("ascii"),
            "tgt": base64.b64encode(tr.tgt_vocab_.proto).decode("ascii"),
        }
    return meta


def vocabs_from_meta(meta: dict):
    """The source and target vocabularies ``vocab_meta`` wrote (``ValueError`` if corrupt)."""
    sub, kind = meta.get("subword"), meta["params"].get("vocab", "word")
    if sub is None:
        if kind != "word":
            raise ValueError(f"params['vocab'] is {kind!r:.40} but the file holds no subword model")
        return Vocab(meta["src_vocab"]), Vocab(meta["tgt_vocab"])
    check_schema(sub, {"kind": "str", "src": "str", "tgt": "str"}, "['subword']")
    if sub["kind"] not in ("bpe", "unigram") or sub["kind"] != kind:
        raise ValueError(f"subword kind {sub['kind']!r:.40} does not match params['vocab'] {kind!r:.40}")
    out = []
    for side in ("src", "tgt"):
        try:
            proto = base64.b64decode(sub[side], validate=True)
            vocab = SubwordVocab(proto, sub["kind"])
        except (binascii.Error, RuntimeError, OSError) as e:
            raise ValueError(f"the {side} subword model does not load ({type(e).__name__})") from None
        if vocab.itos != meta[f"{side}_vocab"]:
            raise ValueError(f"the {side} subword model does not match {side}_vocab")
        out.append(vocab)
    return tuple(out)


def _check_meta(meta: dict, schema: dict, where: str) -> dict:
    """The ``params`` of a model's or checkpoint's JSON, every key checked (``ValueError``)."""
    fmt = meta.get("format", "")
    if fmt not in (FORMAT, *LEGACY_FORMATS):
        raise ValueError(f"format {fmt!r}, expected {FORMAT!r}")
    check_schema(meta, schema, where)
    params = {RENAMED.get(k, k): v for k, v in meta["params"].items()}  # round-1 names too
    for name, parse in SIZES.items():  # the sizes a model may ask for: the command line's bounds
        v = params.get(name)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or not _within(parse, v)):
            raise ValueError(f"params[{name!r}] must be {parse.__name__}, got {v!r:.40}")
    lang = params.get("target_lang")
    if lang is not None and not _within(BY_NAME["target_lang"].parse, lang):
        raise ValueError(f"params['target_lang'] must be a language code, got {lang!r:.40}")
    for key in ("src_vocab", "tgt_vocab"):
        vocab = meta[key]
        if not 0 < len(vocab) <= MAX_VOCAB or not all(isinstance(w, str) for w in vocab):
            raise ValueError(f"{key} must be a list of at most {MAX_VOCAB} words")
    return params


def _within(parse, value) -> bool:
    """Whether the command line's parser ``parse`` takes ``value``."""
    try:
        parse(value)
    except argparse.ArgumentTypeError:
        return False
    return True


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
        meta = read_json_object(meta_file)
        saved = _check_meta(meta, MODEL_SCHEMA, "translator.json")
        fitted = meta["fitted"]
        check_schema(fitted, FITTED_SCHEMA, "translator.json['fitted']")
        # a key the file lacks is older than it: the model was trained with its ``before`` value
        params = {k: v for k, v in {**BEFORE, **saved}.items() if k in cls._PARAMS}
        self = cls(**params)
        self.src_vocab_, self.tgt_vocab_ = vocabs_from_meta(meta)
        self.truecaser_ = truecase.from_meta(meta)
        if (self.truecaser_ is not None) != (self.truecase and not self.lower):
            raise ValueError("params['truecase'] does not match the file's truecaser")
        self.model_ = self._build_model()
        weights = read_tensors(weights_file)
        check_finite(weights, "model.safetensors")
        self.model_.load_state_dict(weights)
    except (ValueError, KeyError, TypeError, AttributeError, SafetensorError, OSError, UserError) as e:
        raise UserError(f"corrupt model directory {path}: {type(e).__name__}: {e}") from None
    self.history_, self.best_epoch_, self.best_bleu_ = (
        fitted["history"],
        fitted["best_epoch"],
        fitted["best_bleu"],
    )
    self.n_epochs_, self.train_seconds_ = fitted["n_epochs"], fitted["train_seconds"]
    self.stop_reason_ = fitted["stop_reason"]
    self.averaged_ = fitted.get("average") if isinstance(fitted.get("average"), dict) else None
    self.model_.eval()
    return self


def save_checkpoint(tr: Translator, ckpt: Path, opt, st: dict[str, Any], best_state, recent=()) -> None:
    """Write ``tr``'s weights, ``opt``'s state, the best weights (when this epoch is the best;
    else the previous ones are kept) and the training state ``st`` as the directory ``ckpt``,
    one unit: a kill leaves the previous checkpoint or this one."""
    new_best = best_state is not None and st["best_epoch"] == st["epoch"]
    state = {
        **st,
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "params": tr.get_params(),
        **vocab_meta(tr),
        "rng": rng_state(tr._one_model().rng),
    }

    def fill(tmp):
        write_tensors(os.path.join(tmp, "model.safetensors"), tr.model_.state_dict())
        write_tensors(os.path.join(tmp, "optimizer.safetensors"), opt.state_dict())
        if new_best:
            write_tensors(os.path.join(tmp, "best.safetensors"), best_state)
        if recent:  # the last epochs' weights, for average_last: "epoch/name"
            flat = {f"{e}/{k}": v for e, w in recent for k, v in w.items()}
            write_tensors(os.path.join(tmp, "recent.safetensors"), flat)
        write_json(os.path.join(tmp, "state.json"), state)

    is_ckpt = lambda d: json_format(Path(d) / "state.json") == FORMAT  # noqa: E731
    keep = () if new_best else ("best.safetensors",)
    write_dir(ckpt, fill, keep, owned=owned_names(ckpt, is_ckpt, lambda name: True))


def _read_checkpoint(ckpt: Path):
    """The checkpoint's state.json, weights, optimizer state and best weights (or None);
    a missing or unreadable file raises ``UserError``."""
    try:
        meta = read_json_object(ckpt / "state.json")
        _check_meta(meta, STATE_SCHEMA, "state.json")
        weights = read_tensors(ckpt / "model.safetensors")
        ostate = read_tensors(ckpt / "optimizer.safetensors")
        best = read_tensors(ckpt / "best.safetensors") if (ckpt / "best.safetensors").exists() else None
        flat = read_tensors(ckpt / "recent.safetensors") if (ckpt / "recent.safetensors").exists() else {}
        for name, tensors in (
            ("model", weights),
            ("optimizer", ostate),
            ("best", best or {}),
            ("recent", flat),
        ):
            check_finite(tensors, f"{name}.safetensors")
        recent: dict[int, dict] = {}
        for key, v in flat.items():
            epoch, name = key.split("/", 1)
            recent.setdefault(int(epoch), {})[name] = v
    except FileNotFoundError as e:
        missing = Path(e.filename or str(e).rsplit(": ", 1)[-1]).name  # safetensors sets no filename
        raise UserError(f"cannot resume: no checkpoint in {ckpt} ({missing} missing)") from None
    except (OSError, ValueError, TypeError, AttributeError, SafetensorError) as e:
        raise UserError(f"cannot resume: the checkpoint in {ckpt} is corrupt ({e})") from None
    return meta, weights, ostate, best, sorted(recent.items())


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
        flags = [BY_NAME[k].flag or "--" + k.replace("_", "-") for k in diff]
        raise UserError(
            f"cannot resume: the architecture differs from the checkpoint's in {', '.join(flags)}"
        )


def load_checkpoint(tr: Translator, ckpt: Path, opt):
    """Restore ``tr``'s weights, ``opt``'s state and the dropout generator from ``ckpt``;
    returns the training state, the best weights (or None) and the last epochs' weights
    (``[(epoch, state)]``, for ``average_last``)."""
    meta, weights, ostate, best, recent = _read_checkpoint(ckpt)
    _check_compatible(tr, meta)
    try:
        model = tr._one_model()
        model.load_state_dict(weights)
        opt.load_state_dict(ostate)
        set_rng_state(model.rng, meta["rng"])
    except (KeyError, ValueError, TypeError) as e:
        raise UserError(f"cannot resume: the checkpoint does not fit this model ({e})") from None
    st = {k: meta[k] for k in ("epoch", "elapsed", "best_bleu", "best_epoch", "bad_epochs", "history")}
    st["stop_reason"] = None
    return st, best, recent[-tr.average_last :] if tr.average_last > 1 else []
