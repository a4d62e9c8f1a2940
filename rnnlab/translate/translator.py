"""``Translator``: the sequence-to-sequence estimator, ``Translator(...).fit(pairs).translate(texts)``.

Scikit-learn's rules: the constructor only stores its arguments; ``fit`` returns ``self`` and
sets the learned state (names ending in ``_``); ``translate`` before ``fit``/``load`` raises
``NotFittedError``; randomness comes from ``seed``. The constructor's defaults are the
chapter's plain model (one-direction encoder, a word vocabulary); ``rnnlab translate train``'s
are the best measured in 25 minutes (``bidirectional=True, vocab="bpe"``, ``params.py``).
``save(dir)`` writes ``model.safetensors`` and ``translator.json`` (arguments, model
configuration, both vocabularies, training history); ``Translator.load(dir)`` reads them back.
Nothing is pickled.

Training (``fit``): Adam, gradient clipping, teacher forcing (a ratio below 1 feeds the model
its own previous word at random steps), a validation score after every epoch when ``valid``
pairs are given (BLEU; ``valid_metric="chrf"`` for scripts written without spaces, where BLEU
on whitespace tokens means nothing), the learning rate times ``lr_decay`` after every epoch
that does not improve the best validation score, early stopping after ``early_stopping`` such
epochs (the best epoch's weights are kept; with ``average_last=K`` > 1 the mean of the last K
epochs' weights replaces them when its validation score is higher, and always without
validation pairs), a ``time_budget`` in minutes (all runs of a resumed training together; it
may end an epoch early, and that partial epoch then counts as done), and with
``checkpoint_dir`` a checkpoint after every epoch that ``fit(..., resume=True)`` continues
from (the batch order of epoch e depends only on ``seed`` and e, so a resumed run repeats
the uninterrupted one, for the same ``threads``). ``threads`` > 1 splits the output layer's
GEMMs and softmax, and Adam, over that many threads and holds BLAS at one thread during
``fit`` (through threadpoolctl when it is installed; else set OPENBLAS_NUM_THREADS=1).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab import distributed
from rnnlab.errors import NotFittedError, UserError
from rnnlab.optim import Adam
from rnnlab.translate import corpus, parallel, params
from rnnlab.translate.batching import epoch_order, make_batches
from rnnlab.translate.decoding import Decoding
from rnnlab.translate.ensemble import mean_state
from rnnlab.translate.model import Seq2Seq
from rnnlab.translate.params import METRIC_NAMES, RENAMED
from rnnlab.translate.progress import progress
from rnnlab.translate.storage import FORMAT as FORMAT  # re-exported
from rnnlab.translate.storage import (
    load_checkpoint,
    read_model_dir,
    renamed,
    save_checkpoint,
    save_epoch_model,
    write_model_dir,
)
from rnnlab.translate.subword import build_vocabs
from rnnlab.translate.training import one_blas_thread, train_epoch
from rnnlab.translate.truecase import Truecaser


class Translator(Decoding):
    """English -> French (or any tab-separated pair) translation with an attentional seq2seq.

    The arguments are the rows of ``params.TABLE`` (appended below at import, so that
    ``help(Translator)`` lists them); the signature spells them out for readers and editors,
    and ``tests/translate/test_params.py`` holds it to the table."""

    def __init__(
        self,
        cell="gru",
        attention="general",
        bidirectional=False,
        num_layers=1,
        hidden_size=256,
        embedding_size=256,
        input_feed=False,
        dropout=0.0,
        teacher_forcing=1.0,
        max_len=10,
        min_freq=2,
        lower=False,
        truecase=True,
        target_lang=None,
        vocab="word",
        vocab_size=8000,
        joint_vocab=False,
        valid_metric="bleu",
        epochs=10,
        time_budget=None,
        batch_size=64,
        lr=1e-3,
        clip=5.0,
        lr_decay=0.5,
        early_stopping=3,
        average_last=1,
        keep_epochs=0,
        beam_size=1,
        length_penalty=1.0,
        max_output_len=None,
        max_input_len=None,
        dtype="float32",
        seed=0,
        threads=1,
        verbose=0,
        **old_names,
    ):
        unknown = sorted(set(old_names) - set(RENAMED))
        if unknown:
            raise TypeError(f"Translator() got unexpected keyword arguments {unknown}")
        self.cell, self.attention, self.bidirectional = cell, attention, bidirectional
        self.num_layers, self.hidden_size, self.embedding_size = num_layers, hidden_size, embedding_size
        self.input_feed, self.dropout, self.teacher_forcing = input_feed, dropout, teacher_forcing
        self.max_len, self.min_freq, self.lower = max_len, min_freq, lower
        self.truecase = truecase
        self.target_lang = target_lang
        self.vocab, self.vocab_size, self.joint_vocab = vocab, vocab_size, joint_vocab
        self.valid_metric = valid_metric
        self.epochs, self.time_budget, self.batch_size = epochs, time_budget, batch_size
        self.lr, self.clip, self.lr_decay, self.early_stopping = lr, clip, lr_decay, early_stopping
        self.average_last, self.keep_epochs = average_last, keep_epochs
        self.beam_size, self.length_penalty = beam_size, length_penalty
        self.max_output_len, self.max_input_len = max_output_len, max_input_len
        self.dtype, self.seed, self.threads, self.verbose = dtype, seed, threads, verbose
        for name, value in renamed(old_names, "Translator()").items():  # a round-1 name wins
            setattr(self, name, value)

    _PARAMS = params.NAMES  # the arguments above, in order (params.TABLE)

    def get_params(self, deep=True) -> dict:
        """The constructor's arguments (scikit-learn's ``get_params``)."""
        return {k: getattr(self, k) for k in self._PARAMS}

    def set_params(self, **values) -> Translator:
        """Set constructor arguments (scikit-learn's ``set_params``); returns ``self``."""
        values = renamed(values, "Translator.set_params")
        bad = sorted(set(values) - set(self._PARAMS))
        if bad:
            raise ValueError(f"invalid parameters {bad} for Translator; valid: {', '.join(self._PARAMS)}")
        for k, v in values.items():
            setattr(self, k, v)
        return self

    def __repr__(self):
        return f"Translator({', '.join(f'{k}={v!r}' for k, v in self.get_params().items())})"

    # -- helpers --------------------------------------------------------------------------
    def _check_fitted(self):
        if not hasattr(self, "model_"):
            raise NotFittedError("this Translator is not fitted yet: call fit(pairs) or Translator.load(dir)")

    def _one_model(self) -> Seq2Seq:
        """The model that training, saving and resuming work on: one ``Seq2Seq``, not an ensemble."""
        if not isinstance(self.model_, Seq2Seq):
            raise TypeError("an ensemble only decodes (translate, evaluate): save or train its members")
        return self.model_

    def _build_model(self) -> Seq2Seq:
        return Seq2Seq(
            len(self.src_vocab_),
            len(self.tgt_vocab_),
            embedding_size=self.embedding_size,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            cell=self.cell,
            bidirectional=self.bidirectional,
            attention=self.attention,
            input_feed=self.input_feed,
            dropout=self.dropout,
            dtype=np.dtype(self.dtype),
            seed=self.seed,
        )

    def _log(self, level, msg):
        if self.verbose >= level and distributed.world().is_root:
            print(msg, flush=True)

    # -- fit ------------------------------------------------------------------------------
    def fit(self, pairs, valid=None, checkpoint_dir=None, resume=False):
        """Train on raw ``(source, target)`` string pairs; ``valid``: pairs for the per-epoch
        BLEU. ``checkpoint_dir``: where a checkpoint is written after every epoch;
        ``resume=True`` continues from it. Returns ``self``."""
        with one_blas_thread(self.threads):
            return self._fit(pairs, valid, checkpoint_dir, resume)

    def _fit(self, pairs, valid, checkpoint_dir, resume):
        world = distributed.world()
        self.averaged_: dict | None = None
        batches, valid_refs = self._fit_setup(pairs, valid)
        parallel.prepare(self.model_, world)  # MPI: one flat buffer, rank 0's weights
        opt = Adam([self.model_], lr=self.lr, threads=self.threads or 1)
        self._one_model().threads = self.threads or 1
        st, ckpt, best_state, recent = self._fit_start(checkpoint_dir, resume, opt)
        t_start = time.time() - st["elapsed"]
        deadline = None if self.time_budget is None else t_start + 60.0 * float(self.time_budget)
        stop = None
        while st["epoch"] < self.epochs:
            if world.any(deadline is not None and time.time() >= deadline):
                stop = "time budget"
                break
            epoch = st["epoch"] + 1
            stats = self._fit_epoch(opt, batches, epoch, deadline)
            if not all(np.isfinite(v).all() for v in self.model_.state_dict().values()):
                raise UserError(
                    f"training diverged: the weights became NaN or infinite in epoch {epoch} "
                    "(lower --lr, or --clip)"
                )
            best_state = self._record_epoch(st, epoch, stats, opt, valid_refs, best_state, t_start)
            if self.average_last > 1:  # the last K epochs' weights, averaged at the end
                recent = [*recent, (epoch, self.model_.state_dict())][-self.average_last :]
            if ckpt is not None and world.is_root:
                save_checkpoint(self, ckpt, opt, st, best_state, recent)
                if self.keep_epochs:
                    save_epoch_model(self, ckpt.parent / "epochs", st, self.keep_epochs)
            if valid_refs and st["bad_epochs"] >= self.early_stopping:
                name = METRIC_NAMES[self.valid_metric]
                stop = f"early stopping: no valid {name} gain for {st['bad_epochs']} epochs"
                break
            if not stats["complete"]:
                stop = "time budget"
                break
        if self.average_last > 1 and len(recent) > 1:
            best_state = self._average_recent(st, recent, best_state, valid_refs)
        self._fit_finish(st, stop, best_state)
        world.check_same_parameters(self.model_, "after training")
        return self

    def _fit_setup(self, pairs, valid):
        """Tokenize the pairs, build both vocabularies and the model; returns the training
        batches and the validation references (None without ``valid``)."""
        params.check_choice("valid_metric", self.valid_metric)
        train, dropped = corpus.tokenize_pairs(pairs, self.max_len, self.lower)
        if not train:
            raise UserError(f"no training pair has 1..{self.max_len} tokens on both sides")
        self.truecaser_ = Truecaser.fit(train) if self.truecase and not self.lower else None
        case = self.truecaser_.pairs if self.truecaser_ is not None else list
        train = case(train)
        self.src_vocab_, self.tgt_vocab_ = build_vocabs(
            train, self.vocab, self.vocab_size, self.joint_vocab, self.min_freq
        )
        self.model_ = self._build_model()
        valid_refs = None
        if valid is not None:
            valid_tok = corpus.tokenize_pairs(valid, self.max_len, self.lower)[0]
            valid_refs = corpus.group_references(case(valid_tok))
        batches = make_batches(
            [(self.src_vocab_.encode(s), self.tgt_vocab_.encode(t)) for s, t in train], self.batch_size
        )
        self._log(
            1,
            f"train pairs {len(train)} ({dropped} dropped: empty or > {self.max_len} tokens), "
            f"valid sources {len(valid_refs or {})}, vocab src {len(self.src_vocab_)} "
            f"tgt {len(self.tgt_vocab_)}, {self.model_.num_parameters():,} parameters",
        )
        return batches, valid_refs

    def _fit_start(self, checkpoint_dir, resume, opt):
        """The training state to start from (fresh, or the checkpoint's with ``resume``), the
        checkpoint directory (None without one) and the best weights so far (or None)."""
        st: dict[str, Any] = {
            "epoch": 0,
            "elapsed": 0.0,
            "best_bleu": -1.0,
            "best_epoch": 0,
            "bad_epochs": 0,
            "history": [],
            "stop_reason": None,
        }
        ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
        best_state, recent = None, []
        root = distributed.world().is_root
        if resume:
            if ckpt is None:
                raise UserError("resume needs a checkpoint directory")
            if root:  # under MPI rank 0 reads it and sends it to the others
                st, best_state, recent = load_checkpoint(self, ckpt, opt)
            st, best_state, recent = parallel.share_checkpoint(self.model_, opt, st, best_state, recent)
            self._log(1, f"resumed from {ckpt} after epoch {st['epoch']} ({st['elapsed']:.0f} s trained)")
        elif ckpt is not None and root:
            ckpt.mkdir(parents=True, exist_ok=True)
        return st, ckpt, best_state, recent

    def _fit_epoch(self, opt, batches, epoch, deadline):
        """Train epoch ``epoch`` (a progress bar at ``verbose >= 2``); returns its statistics."""
        bar, world = None, distributed.world()
        if self.verbose >= 2 and world.is_root:
            bar = progress(len(batches), f"epoch {epoch}")
        parallel.epoch_rng(self._one_model().rng, world)  # MPI: rank r's own dropout draws
        try:
            return train_epoch(
                self.model_,
                opt,
                batches,
                epoch_order(len(batches), self.seed, epoch),
                self.clip,
                self.teacher_forcing,
                deadline,
                bar,
                world=world if world.size > 1 else None,
            )
        finally:
            if bar is not None:
                bar.close()

    def _record_epoch(self, st, epoch, stats, opt, valid_refs, best_state, t_start):
        """Append epoch ``epoch``'s record to ``st`` (with the validation BLEU, the best epoch,
        and the learning rate decayed on a plateau), log it; returns the best weights so far."""
        rec = {
            "epoch": epoch,
            "loss": round(stats["loss"], 5),
            "tokens": stats["tokens"],
            "seconds": round(stats["seconds"], 2),
            "tokens_per_s": round(stats["tokens"] / max(stats["seconds"], 1e-9), 1),
            "lr": opt.lr,
            "complete": stats["complete"],
        }
        msg = f"epoch {epoch}: loss {rec['loss']:.4f}, {rec['tokens_per_s']:.0f} target tokens/s"
        if valid_refs:
            bleu = parallel.valid_bleu(self, valid_refs, distributed.world())
            rec[f"valid_{self.valid_metric}"] = bleu
            msg += f", valid {METRIC_NAMES[self.valid_metric]} {bleu:.2f}"
            if bleu > st["best_bleu"]:
                st["best_bleu"], st["best_epoch"], st["bad_epochs"] = bleu, epoch, 0
                best_state = self.model_.state_dict()
            else:
                st["bad_epochs"] += 1
                opt.lr *= self.lr_decay  # decay on plateau
                msg += f" (no gain; lr -> {opt.lr:.2e})"
        st["history"].append(rec)
        st["epoch"] = epoch
        st["elapsed"] = time.time() - t_start
        self._log(1, msg + f"  [{st['elapsed']:.0f} s]")
        return best_state

    def _average_recent(self, st, recent, best_state, valid_refs):
        """The mean of the last epochs' weights (``average_last``), kept when its validation
        score beats the best epoch's (or without validation pairs); returns the weights to keep."""
        mean = mean_state([w for _, w in recent])
        info: dict[str, Any] = {"epochs": [e for e, _ in recent], "kept": True}
        if valid_refs:
            self._one_model().load_state_dict(mean)
            score = parallel.valid_bleu(self, valid_refs, distributed.world())
            info.update(valid_score=score, best_epoch_score=st["best_bleu"], kept=score > st["best_bleu"])
            if info["kept"]:
                st["best_bleu"] = score
        self.averaged_ = info
        name = METRIC_NAMES[self.valid_metric]
        self._log(
            1,
            f"average of epochs {info['epochs']}: valid {name} {info.get('valid_score', float('nan')):.2f}"
            f" -> {'kept' if info['kept'] else 'the best epoch kept'}",
        )
        return mean if info["kept"] else best_state

    def _fit_finish(self, st, stop, best_state):
        """Keep the best epoch's weights and set the learned attributes from the training state."""
        if best_state is not None:
            self._one_model().load_state_dict(best_state)  # the best epoch's weights
        st["stop_reason"] = stop or "epochs"
        self.history_ = st["history"]
        self.best_epoch_ = st["best_epoch"] or st["epoch"]
        self.best_bleu_ = st["best_bleu"] if st["best_bleu"] >= 0 else None
        self.n_epochs_ = st["epoch"]
        self.train_seconds_ = round(st["elapsed"], 2)
        self.stop_reason_ = st["stop_reason"]
        self.model_.eval()

    # -- save / load -----------------------------------------------------------------------
    def save(self, path):
        """Write ``model.safetensors`` and ``translator.json`` into the directory ``path``."""
        self._check_fitted()
        write_model_dir(self, Path(path))
        return self

    @classmethod
    def load(cls, path):
        """Read a directory written by ``save``; a missing or corrupt one raises ``UserError``."""
        return read_model_dir(cls, Path(path))


Translator.__doc__ = f"{(Translator.__doc__ or '').rstrip()}\n\n{params.doc()}"  # the table's rows
