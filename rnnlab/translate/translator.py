"""``Translator``: the sequence-to-sequence estimator, ``Translator(...).fit(pairs).translate(texts)``.

Scikit-learn's rules: the constructor only stores its arguments; ``fit`` returns ``self`` and
sets the learned state (names ending in ``_``); ``translate`` before ``fit``/``load`` raises
``NotFittedError``; randomness comes from ``seed``. ``save(dir)`` writes ``model.safetensors``
and ``translator.json`` (arguments, model configuration, both vocabularies, training
history); ``Translator.load(dir)`` reads them back. Nothing is pickled.

Training (``fit``): Adam, gradient clipping, teacher forcing (a ratio below 1 feeds the model
its own previous word at random steps), validation BLEU after every epoch when ``valid``
pairs are given, the learning rate times ``lr_decay`` after every epoch that does not
improve the best validation BLEU, early stopping after ``early_stopping`` such epochs (the
best epoch's weights are kept), a ``time_budget`` in minutes (all runs of a resumed training
together; it may end an epoch early, and that partial epoch then counts as done), and with
``checkpoint_dir`` a checkpoint after every epoch that ``fit(..., resume=True)`` continues
from (the batch order of epoch e depends only on ``seed`` and e, so a resumed run repeats
the uninterrupted one, for the same ``threads``). ``threads`` > 1 splits the output layer's
GEMMs and softmax, and Adam, over that many threads and holds BLAS at one thread during
``fit`` (through threadpoolctl when it is installed; else set OPENBLAS_NUM_THREADS=1).
"""
from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import numpy as np
from safetensors import SafetensorError

from rnnlab.errors import NotFittedError, UserError
from rnnlab.io import read_tensors, write_json, write_tensors
from rnnlab.nn import runtime
from rnnlab.optim import Adam
from rnnlab.translate import corpus
from rnnlab.translate.batching import epoch_order, make_batches, pad_sources
from rnnlab.translate.bleu import corpus_scores
from rnnlab.translate.model import Seq2Seq, reorder_state
from rnnlab.translate.search import beam_search, greedy_search
from rnnlab.translate.training import rng_state, set_rng_state, train_epoch
from rnnlab.translate.vocab import Vocab

FORMAT = "rnnlab.translate/1"
CHUNK = 256   # sentences decoded together
# the names of round 1, accepted (with a DeprecationWarning) for one release
RENAMED = {"layers": "num_layers", "hidden": "hidden_size", "emb": "embedding_size"}


def _one_blas_thread(threads):
    """With threads > 1 rnnlab splits the big GEMMs itself: hold every GEMM library at one
    thread meanwhile, so the two do not oversubscribe the cores."""
    import contextlib
    if not threads or threads < 2:
        return contextlib.nullcontext()
    return runtime.override(threads=1)


def renamed(params: dict, where: str) -> dict:
    """``params`` with round-1 names (layers, hidden, emb) replaced, warning once about them."""
    old = [k for k in params if k in RENAMED]
    if old:
        warnings.warn(f"{where}: {', '.join(f'{k}= is now {RENAMED[k]}=' for k in old)} (the old "
                      "names go in the next release)", DeprecationWarning, stacklevel=3)
    return {RENAMED.get(k, k): v for k, v in params.items()}


def _progress(total, desc):
    """A tqdm bar on a terminal; elsewhere (a log file) a plain line every 30 seconds."""
    import sys

    from tqdm import tqdm
    if sys.stderr.isatty():
        return tqdm(total=total, desc=desc, unit="batch", leave=False)
    return _LogProgress(total, desc)


class _LogProgress:
    def __init__(self, total, desc, every=30.0):
        self.total, self.desc, self.every, self.n = total, desc, every, 0
        self.last, self.postfix = time.time(), {}

    def update(self, n):
        self.n += n
        if time.time() - self.last >= self.every:
            self.last = time.time()
            info = ", ".join(f"{k} {v}" for k, v in self.postfix.items())
            print(f"{self.desc}: {self.n}/{self.total} batches, {info}", flush=True)

    def set_postfix(self, **kw):
        self.postfix = kw

    def close(self):
        pass


class Translator:
    """English -> French (or any tab-separated pair) translation with an attentional seq2seq."""

    def __init__(self, cell="gru", attention="general", bidirectional=False, num_layers=1,
                 hidden_size=256, embedding_size=256, input_feed=False, dropout=0.0,
                 teacher_forcing=1.0, max_len=10, min_freq=2, lower=True, epochs=10, time_budget=None,
                 batch_size=64, lr=1e-3, clip=5.0, lr_decay=0.5, early_stopping=3, beam_size=1,
                 length_penalty=1.0, max_output_len=None, max_input_len=None, dtype="float32", seed=0,
                 threads=1, verbose=0, **old_names):
        unknown = sorted(set(old_names) - set(RENAMED))
        if unknown:
            raise TypeError(f"Translator() got unexpected keyword arguments {unknown}")
        old = renamed(old_names, "Translator()")
        num_layers = old.get("num_layers", num_layers)
        hidden_size = old.get("hidden_size", hidden_size)
        embedding_size = old.get("embedding_size", embedding_size)
        self.cell, self.attention, self.bidirectional = cell, attention, bidirectional
        self.num_layers, self.hidden_size, self.embedding_size = num_layers, hidden_size, embedding_size
        self.input_feed, self.dropout, self.teacher_forcing = input_feed, dropout, teacher_forcing
        self.max_len, self.min_freq, self.lower = max_len, min_freq, lower
        self.epochs, self.time_budget, self.batch_size = epochs, time_budget, batch_size
        self.lr, self.clip, self.lr_decay, self.early_stopping = lr, clip, lr_decay, early_stopping
        self.beam_size, self.length_penalty = beam_size, length_penalty
        self.max_output_len, self.max_input_len = max_output_len, max_input_len
        self.dtype, self.seed, self.threads, self.verbose = dtype, seed, threads, verbose

    _PARAMS = ("cell", "attention", "bidirectional", "num_layers", "hidden_size", "embedding_size",
               "input_feed", "dropout",
               "teacher_forcing", "max_len", "min_freq", "lower", "epochs", "time_budget", "batch_size",
               "lr", "clip", "lr_decay", "early_stopping", "beam_size", "length_penalty",
               "max_output_len", "max_input_len", "dtype", "seed", "threads", "verbose")

    def get_params(self, deep=True) -> dict:
        """The constructor's arguments (scikit-learn's ``get_params``)."""
        return {k: getattr(self, k) for k in self._PARAMS}

    def set_params(self, **params) -> "Translator":
        """Set constructor arguments (scikit-learn's ``set_params``); returns ``self``."""
        params = renamed(params, "Translator.set_params")
        bad = sorted(set(params) - set(self._PARAMS))
        if bad:
            raise ValueError(f"invalid parameters {bad} for Translator; valid: {', '.join(self._PARAMS)}")
        for k, v in params.items():
            setattr(self, k, v)
        return self

    def __repr__(self):
        return f"Translator({', '.join(f'{k}={v!r}' for k, v in self.get_params().items())})"

    # -- helpers --------------------------------------------------------------------------
    def _check_fitted(self):
        if not hasattr(self, "model_"):
            raise NotFittedError("this Translator is not fitted yet: call fit(pairs) or Translator.load(dir)")

    def _build_model(self):
        return Seq2Seq(len(self.src_vocab_), len(self.tgt_vocab_), embedding_size=self.embedding_size,
                       hidden_size=self.hidden_size, num_layers=self.num_layers, cell=self.cell,
                       bidirectional=self.bidirectional, attention=self.attention,
                       input_feed=self.input_feed, dropout=self.dropout,
                       dtype=np.dtype(self.dtype), seed=self.seed)

    def _log(self, level, msg):
        if self.verbose >= level:
            print(msg, flush=True)

    # -- fit ------------------------------------------------------------------------------
    def fit(self, pairs, valid=None, checkpoint_dir=None, resume=False):
        """Train on raw ``(source, target)`` string pairs; ``valid``: pairs for the per-epoch
        BLEU. ``checkpoint_dir``: where a checkpoint is written after every epoch;
        ``resume=True`` continues from it. Returns ``self``."""
        with _one_blas_thread(self.threads):
            return self._fit(pairs, valid, checkpoint_dir, resume)

    def _fit(self, pairs, valid, checkpoint_dir, resume):
        train, dropped = corpus.tokenize_pairs(pairs, self.max_len, self.lower)
        if not train:
            raise UserError(f"no training pair has 1..{self.max_len} tokens on both sides")
        self.src_vocab_ = Vocab.build((p[0] for p in train), self.min_freq)
        self.tgt_vocab_ = Vocab.build((p[1] for p in train), self.min_freq)
        self.model_ = self._build_model()
        valid_refs = None
        if valid is not None:
            valid_refs = corpus.group_references(corpus.tokenize_pairs(valid, self.max_len, self.lower)[0])
        batches = make_batches([(self.src_vocab_.encode(s), self.tgt_vocab_.encode(t)) for s, t in train],
                               self.batch_size)
        self._log(1, f"train pairs {len(train)} ({dropped} dropped: empty or > {self.max_len} tokens), "
                     f"valid sources {len(valid_refs or {})}, vocab src {len(self.src_vocab_)} "
                     f"tgt {len(self.tgt_vocab_)}, {self.model_.num_parameters():,} parameters")
        opt = Adam([self.model_], lr=self.lr, threads=self.threads or 1)
        self.model_.threads = self.threads or 1
        st = {"epoch": 0, "elapsed": 0.0, "best_bleu": -1.0, "best_epoch": 0, "bad_epochs": 0,
              "history": [], "stop_reason": None}
        ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
        best_state = None
        if resume:
            if ckpt is None:
                raise UserError("resume needs a checkpoint directory")
            st, best_state = self._load_checkpoint(ckpt, opt)
            self._log(1, f"resumed from {ckpt} after epoch {st['epoch']} ({st['elapsed']:.0f} s trained)")
        elif ckpt is not None:
            ckpt.mkdir(parents=True, exist_ok=True)
        t_start = time.time() - st["elapsed"]
        deadline = None if self.time_budget is None else t_start + 60.0 * float(self.time_budget)
        stop = None
        while st["epoch"] < self.epochs:
            if deadline is not None and time.time() >= deadline:
                stop = "time budget"
                break
            epoch = st["epoch"] + 1
            bar = None
            if self.verbose >= 2:
                bar = _progress(len(batches), f"epoch {epoch}")
            try:
                stats = train_epoch(self.model_, opt, batches, epoch_order(len(batches), self.seed, epoch),
                                    self.clip, self.teacher_forcing, deadline, bar)
            finally:
                if bar is not None:
                    bar.close()
            rec = {"epoch": epoch, "loss": round(stats["loss"], 5), "tokens": stats["tokens"],
                   "seconds": round(stats["seconds"], 2),
                   "tokens_per_s": round(stats["tokens"] / max(stats["seconds"], 1e-9), 1),
                   "lr": opt.lr, "complete": stats["complete"]}
            msg = f"epoch {epoch}: loss {rec['loss']:.4f}, {rec['tokens_per_s']:.0f} target tokens/s"
            if valid_refs:
                bleu = self._bleu(valid_refs)
                rec["valid_bleu"] = bleu
                msg += f", valid BLEU {bleu:.2f}"
                if bleu > st["best_bleu"]:
                    st["best_bleu"], st["best_epoch"], st["bad_epochs"] = bleu, epoch, 0
                    best_state = self.model_.state_dict()
                else:
                    st["bad_epochs"] += 1
                    opt.lr *= self.lr_decay                     # decay on plateau
                    msg += f" (no gain; lr -> {opt.lr:.2e})"
            st["history"].append(rec)
            st["epoch"] = epoch
            st["elapsed"] = time.time() - t_start
            self._log(1, msg + f"  [{st['elapsed']:.0f} s]")
            if ckpt is not None:
                self._save_checkpoint(ckpt, opt, st, best_state)
            if valid_refs and st["bad_epochs"] >= self.early_stopping:
                stop = f"early stopping: no valid BLEU gain for {st['bad_epochs']} epochs"
                break
            if not stats["complete"]:
                stop = "time budget"
                break
        if best_state is not None:
            self.model_.load_state_dict(best_state)             # the best epoch's weights
        st["stop_reason"] = stop or "epochs"
        self.history_ = st["history"]
        self.best_epoch_ = st["best_epoch"] or st["epoch"]
        self.best_bleu_ = st["best_bleu"] if st["best_bleu"] >= 0 else None
        self.n_epochs_ = st["epoch"]
        self.train_seconds_ = round(st["elapsed"], 2)
        self.stop_reason_ = st["stop_reason"]
        self.model_.eval()
        return self

    # -- checkpoints -----------------------------------------------------------------------
    def _save_checkpoint(self, ckpt, opt, st, best_state):
        write_tensors(ckpt / "model.safetensors", self.model_.state_dict())
        write_tensors(ckpt / "optimizer.safetensors", opt.state_dict())
        if best_state is not None and st["best_epoch"] == st["epoch"]:
            write_tensors(ckpt / "best.safetensors", best_state)
        write_json(ckpt / "state.json", {**st, "format": FORMAT, "params": self.get_params(),
                                         "src_vocab": self.src_vocab_.itos, "tgt_vocab": self.tgt_vocab_.itos,
                                         "rng": rng_state(self.model_.rng)})

    def _load_checkpoint(self, ckpt, opt):
        try:
            meta = json.loads((ckpt / "state.json").read_text(encoding="utf-8"))
            weights = read_tensors(ckpt / "model.safetensors")
            ostate = read_tensors(ckpt / "optimizer.safetensors")
            best = read_tensors(ckpt / "best.safetensors") if (ckpt / "best.safetensors").exists() else None
        except FileNotFoundError as e:
            raise UserError(f"cannot resume: no checkpoint in {ckpt} ({Path(e.filename).name} missing)") from None
        except (OSError, ValueError, SafetensorError) as e:
            raise UserError(f"cannot resume: the checkpoint in {ckpt} is corrupt ({e})") from None
        if meta.get("src_vocab") != self.src_vocab_.itos or meta.get("tgt_vocab") != self.tgt_vocab_.itos:
            raise UserError("cannot resume: the training data or max-len/min-freq/lower changed since the "
                            "checkpoint (the vocabularies differ)")
        arch = ("cell", "attention", "bidirectional", "num_layers", "hidden_size", "embedding_size",
                "input_feed", "dtype")
        saved = {RENAMED.get(k, k): v for k, v in meta["params"].items()}   # round-1 checkpoints too
        diff = [k for k in arch if saved.get(k) != getattr(self, k)]
        if diff:
            raise UserError(f"cannot resume: the architecture differs from the checkpoint's in {diff}")
        try:
            self.model_.load_state_dict(weights)
            opt.load_state_dict(ostate)
        except (KeyError, ValueError) as e:
            raise UserError(f"cannot resume: the checkpoint does not fit this model ({e})") from None
        set_rng_state(self.model_.rng, meta["rng"])
        st = {k: meta[k] for k in ("epoch", "elapsed", "best_bleu", "best_epoch", "bad_epochs", "history")}
        st["stop_reason"] = None
        return st, best

    # -- translate ------------------------------------------------------------------------
    def _prepare(self, sentences):
        """Normalised token lists; empty ones become None, over-long ones are truncated (warned)."""
        limit = self.max_input_len or 2 * self.max_len
        toks, empty, cut = [], 0, 0
        for s in sentences:
            if not isinstance(s, str):
                raise TypeError(f"translate expects strings, got {type(s).__name__}")
            t = corpus.normalize(s, self.lower)
            if not t:
                empty += 1
                toks.append(None)
                continue
            if len(t) > limit:
                cut += 1
                t = t[:limit]
            toks.append(t)
        if empty:
            warnings.warn(f"{empty} empty or whitespace-only sentence(s): translated as ''", stacklevel=3)
        if cut:
            warnings.warn(f"{cut} sentence(s) longer than {limit} tokens were truncated to {limit}",
                          stacklevel=3)
        return toks

    def _translate_tokens(self, toks, beam_size=None, length_penalty=None, return_attention=False):
        """Token lists (None = empty) -> output token lists (and attention weights)."""
        beam = self.beam_size if beam_size is None else int(beam_size)
        alpha = self.length_penalty if length_penalty is None else float(length_penalty)
        if beam < 1:
            raise ValueError(f"beam size must be >= 1, got {beam}")
        model = self.model_
        model.eval()
        out = [[] for _ in toks]
        attn = [None for _ in toks]
        idx = sorted((i for i, t in enumerate(toks) if t), key=lambda i: len(toks[i]))
        for a in range(0, len(idx), CHUNK):
            chunk = idx[a : a + CHUNK]
            src, lengths = pad_sources([self.src_vocab_.encode(toks[i]) for i in chunk])
            cap = self.max_output_len or max(self.max_len, int(lengths.max())) + 5
            state = model.start(src, lengths)
            if beam == 1:
                res = greedy_search(model.step, reorder_state, state, len(chunk), cap,
                                    return_attention=return_attention)
                hyps, ws = res if return_attention else (res, None)
            else:
                hyps, ws = beam_search(model.step, reorder_state, state, len(chunk), beam, cap, alpha), None
            for j, i in enumerate(chunk):
                out[i] = self.tgt_vocab_.decode(hyps[j])
                if ws is not None:
                    attn[i] = ws[j][:, : lengths[j]]
        return (out, attn) if return_attention else out

    def translate(self, sentences, beam_size=None, length_penalty=None, return_attention=False):
        """Translate raw strings; returns space-joined normalised target tokens per sentence
        (and, with ``return_attention``, each sentence's (output words + <eos>, source words)
        attention weights, greedy search only)."""
        self._check_fitted()
        if isinstance(sentences, str):
            raise TypeError("translate expects a list of strings; wrap a single sentence in a list")
        toks = self._prepare(list(sentences))
        if return_attention:
            if (beam_size or self.beam_size) != 1:
                raise ValueError("attention weights are returned by greedy search (beam_size=1) only")
            out, attn = self._translate_tokens(toks, 1, return_attention=True)
            return [" ".join(o) for o in out], attn
        return [" ".join(o) for o in self._translate_tokens(toks, beam_size, length_penalty)]

    def _bleu(self, refs):
        srcs = list(refs)
        hyps = self._translate_tokens([s.split() for s in srcs], beam_size=1)
        return corpus_scores([" ".join(h) for h in hyps], [refs[s] for s in srcs])["bleu"]

    def evaluate(self, pairs, beam_size=None, length_penalty=None, n_samples=5):
        """Corpus BLEU and chrF of raw ``(source, target)`` pairs, all targets of a source as
        its references (pairs over ``max_len`` tokens are left out, as in training)."""
        self._check_fitted()
        refs = corpus.group_references(corpus.tokenize_pairs(pairs, self.max_len, self.lower)[0])
        if not refs:
            raise UserError(f"no evaluation pair has 1..{self.max_len} tokens on both sides")
        srcs = list(refs)
        t0 = time.time()
        hyps = [" ".join(h) for h in self._translate_tokens([s.split() for s in srcs], beam_size, length_penalty)]
        seconds = time.time() - t0
        res = corpus_scores(hyps, [refs[s] for s in srcs])
        res["beam_size"] = self.beam_size if beam_size is None else int(beam_size)
        res["decode_seconds"] = round(seconds, 2)
        res["samples"] = [{"source": s, "output": h, "references": refs[s]}
                          for s, h in list(zip(srcs, hyps))[:n_samples]]
        return res

    # -- save / load -----------------------------------------------------------------------
    def save(self, path):
        """Write ``model.safetensors`` and ``translator.json`` into the directory ``path``."""
        self._check_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        write_tensors(path / "model.safetensors", self.model_.state_dict())
        write_json(path / "translator.json", {
            "format": FORMAT, "params": self.get_params(), "model": self.model_.config(),
            "src_vocab": self.src_vocab_.itos, "tgt_vocab": self.tgt_vocab_.itos,
            "fitted": {"history": self.history_, "best_epoch": self.best_epoch_, "best_bleu": self.best_bleu_,
                       "n_epochs": self.n_epochs_, "train_seconds": self.train_seconds_,
                       "stop_reason": self.stop_reason_}})
        return self

    @classmethod
    def load(cls, path):
        """Read a directory written by ``save``; a missing or corrupt one raises ``UserError``."""
        path = Path(path)
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
            saved = {RENAMED.get(k, k): v for k, v in meta["params"].items()}   # round-1 models too
            params = {k: v for k, v in saved.items() if k in cls._PARAMS}
            self = cls(**params)
            self.src_vocab_, self.tgt_vocab_ = Vocab(meta["src_vocab"]), Vocab(meta["tgt_vocab"])
            self.model_ = self._build_model()
            self.model_.load_state_dict(read_tensors(weights_file))
            fitted = meta["fitted"]
        except (ValueError, KeyError, TypeError, SafetensorError, OSError) as e:
            raise UserError(f"corrupt model directory {path}: {type(e).__name__}: {e}") from None
        self.history_, self.best_epoch_, self.best_bleu_ = fitted["history"], fitted["best_epoch"], fitted["best_bleu"]
        self.n_epochs_, self.train_seconds_ = fitted["n_epochs"], fitted["train_seconds"]
        self.stop_reason_ = fitted["stop_reason"]
        self.model_.eval()
        return self
