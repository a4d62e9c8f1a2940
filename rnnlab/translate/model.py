"""Seq2Seq: an encoder-decoder with attention, every backward by hand (docs/EQUATIONS.md sections 6-7).

Encoder (the chapter's encoder)::

    x_i  = E_src[w_i]                                 (S, N, E)    source embeddings
    e, h = RNN_enc(x, lengths)                        e (S, N, D*H) encoder states, 0 past a length;
                                                      h (L*D, N, H) final states; D = 2 if bidirectional
Bridge (the chapter's thought vector becomes the decoder's initial state)::

    d_0^(l) = tanh(W_b [h_fwd^(l); h_bwd^(l)] + b_b)  (L, N, H)    one per layer (LSTM: c_0 likewise)
Decoder, t = 1..T, teacher forcing: y_0 = <sos>, then the gold word (or, with a ratio < 1,
sometimes the model's own previous argmax)::

    x_t  = E_tgt[y_{t-1}]   (; h~_{t-1} with input feeding, Luong et al. 2015 sec. 3.3)
    d_t  = RNN_dec(x_t, d_{t-1})                      (N, H)
    c_t, a_t = attention(d_t, e, mask)                (N, D*H), (N, S)   nn/attention.py
    h~_t = tanh(W_c [c_t; d_t] + b_c)                 (N, H)  Luong's attentional layer, Eq. 5
    p_t  = softmax(V h~_t + b_v)                      (N, Vt) the chapter's softmax(V h)
    attention "none": h~_t = d_t, the chapter's plain seq2seq (the source enters only via d_0)
Loss: cross-entropy over the M real target words (<eos> included, <pad> ignored), averaged.

Backward, the forward lines inverted from the loss down::

    dz   = (p - onehot(y)) / M                        (M, Vt) only the M real words
    dV   = dz^T h~,  db_v = sum dz,  dh~ = dz V       one GEMM each over all steps
    da_c = dh~ (1 - h~^2);  [dc; dd] = da_c W_c;  dW_c = sum da_c^T [c; d]
    dd  += attention query path;  de = attention key and value paths
    RNN_dec backward (the engine's time loop, or the step loop below) -> dx_t, dd_0
    (input feeding: dx_t = [dE_tgt; dh~_{t-1}] adds to step t-1's dh~)
    da_b = dd_0 (1 - d_0^2) -> dW_b, dh (final encoder states);  RNN_enc backward(de, dh) -> dx
    dE_tgt[y] += dx_t,  dE_src[w] += dx_i

Two paths compute the same function: ``teacher`` runs the decoder RNN over all T steps in one
call of the engine's time loop and attends with all T queries at once (used when every input
is the gold word and there is no input feeding); ``step`` loops over t with the engine's pure
``StackedCell`` (input feeding, teacher-forcing ratio < 1). Shapes: N batch, S source length,
T target steps, E embedding, H hidden, L layers, D directions, Vs / Vt vocabulary sizes.
Token ids: 0 <pad>, 1 <unk>, 2 <sos>, 3 <eos> (``vocab.py``).
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np

from rnnlab.nn import GRU, LSTM, Embedding, Linear, Module, StackedCell, inference_mode
from rnnlab.nn.attention import SCORES, Attention, mm_last
from rnnlab.nn.backend.fused_loss import LinearCrossEntropy
from rnnlab.nn.functional import log_softmax

PAD, UNK, SOS, EOS = 0, 1, 2, 3
CELLS = ("gru", "lstm")


# ----------------------------------------------------------------------------- inference state


class DecState(NamedTuple):
    """What one decoding step needs, batch on axis 0 of every field except h and c (axis 1)."""

    h: np.ndarray  # (L, B, H)
    c: np.ndarray | None  # (L, B, H) LSTM cell state
    feed: np.ndarray | None  # (B, H) h~ of the previous step (input feeding)
    keys: np.ndarray  # (B, S, D*H)
    pk: np.ndarray | None  # (B, S, P) attention's key side
    mask: np.ndarray  # (B, S) bool


def reorder_state(state: DecState, idx) -> DecState:
    """Gather hypotheses ``idx`` (B',) out of a batch of states (beam search)."""
    return DecState(
        state.h[:, idx],
        None if state.c is None else state.c[:, idx],
        None if state.feed is None else state.feed[idx],
        state.keys[idx],
        None if state.pk is None else state.pk[idx],
        state.mask[idx],
    )


# ----------------------------------------------------------------------------- the model


class Seq2Seq(Module):
    """Encoder-decoder with attention; ``loss = model(src, lengths, tgt)`` then ``model.backward()``.

    src (N, S) int ids right-padded with 0, lengths (N,), tgt (N, T+1) = <sos> y_1 .. y_k <eos>
    <pad>... . ``backward`` accumulates every parameter gradient into ``grads``.
    """

    def __init__(
        self,
        src_vocab_size,
        tgt_vocab_size,
        embedding_size=256,
        hidden_size=256,
        num_layers=1,
        cell="gru",
        bidirectional=False,
        attention="general",
        input_feed=False,
        dropout=0.0,
        dtype=np.float32,
        seed=None,
        emb_size=None,
    ):
        super().__init__()
        if emb_size is not None:
            warnings.warn(
                "Seq2Seq(emb_size=...) is now embedding_size=...; emb_size goes in the next release",
                DeprecationWarning,
                stacklevel=2,
            )
            embedding_size = emb_size
        self._check_arguments(cell, attention, input_feed, dropout)
        self.cell, self.score, self.input_feed = cell, attention, bool(input_feed)
        self.num_layers, self.bidirectional, self.dropout = (
            int(num_layers),
            bool(bidirectional),
            float(dropout),
        )
        self.embedding_size, self.hidden_size = int(embedding_size), int(hidden_size)
        self.dtype = np.dtype(dtype)
        seeds = np.random.default_rng(seed).integers(0, 2**31 - 1, size=9)
        E, H, L = self.embedding_size, self.hidden_size, self.num_layers
        D = 2 if bidirectional else 1
        DH = D * H
        RNN = GRU if cell == "gru" else LSTM
        kw = dict(dtype=self.dtype)
        self.src_embed = Embedding(src_vocab_size, E, padding_idx=PAD, seed=seeds[0], **kw)
        self.encoder = RNN(E, H, L, bidirectional=bidirectional, seed=seeds[1], **kw)
        self.bridge = Linear(DH, H, seed=seeds[2], **kw)
        if cell == "lstm":
            self.bridge_c = Linear(DH, H, seed=seeds[3], **kw)
        self.tgt_embed = Embedding(tgt_vocab_size, E, padding_idx=PAD, seed=seeds[4], **kw)
        self.decoder = RNN(E + (H if self.input_feed else 0), H, L, seed=seeds[5], **kw)
        if attention != "none":
            self.attention = Attention(attention, H, DH, seed=seeds[6], **kw)
            self.combine = Linear(DH + H, H, seed=seeds[7], **kw)
        self.out = Linear(H, tgt_vocab_size, seed=seeds[8], **kw)
        self.rng = np.random.default_rng(seeds[8] + 1)  # dropout and teacher-forcing draws
        self._steps = StackedCell(self.decoder)  # the decoder one step at a time
        self.xent = LinearCrossEntropy(self.out)  # V h~ + b_v and the loss, fused
        self._cache = None

    @staticmethod
    def _check_arguments(cell, attention, input_feed, dropout):
        """Raise ``ValueError`` for an unknown cell or score, input feeding without attention,
        or a dropout outside [0, 1)."""
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {CELLS}, got {cell!r}")
        if attention not in SCORES:
            raise ValueError(f"attention must be one of {SCORES}, got {attention!r}")
        if input_feed and attention == "none":
            raise ValueError("input_feed needs an attention score (it feeds h~, which 'none' has not)")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")

    @property
    def threads(self):
        """Threads of the output layer's GEMMs and softmax (blocks of rows on runtime.pool())."""
        return self.xent.parts

    @threads.setter
    def threads(self, n):
        self.xent.parts = max(1, int(n))

    @property
    def src_vocab_size(self):
        return self.src_embed.num_embeddings

    @property
    def tgt_vocab_size(self):
        return self.out.out_features

    def config(self) -> dict:
        """The constructor's arguments (JSON-friendly), enough to rebuild the model."""
        return dict(
            src_vocab_size=self.src_vocab_size,
            tgt_vocab_size=self.tgt_vocab_size,
            embedding_size=self.embedding_size,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            cell=self.cell,
            bidirectional=self.bidirectional,
            attention=self.score,
            input_feed=self.input_feed,
            dropout=self.dropout,
            dtype=self.dtype.name,
        )

    # -- helpers -------------------------------------------------------------------------
    def _drop_mask(self, shape):
        if not self.training or self.dropout == 0.0:
            return None
        keep = self.rng.random(shape) >= self.dropout
        return (keep / (1.0 - self.dropout)).astype(self.dtype)

    def _join_directions(self, s):
        """(L*D, N, H) final states -> (L, N, D*H): [forward; backward] per layer."""
        L, D = self.num_layers, 2 if self.bidirectional else 1
        _, N, H = s.shape
        return s.reshape(L, D, N, H).transpose(0, 2, 1, 3).reshape(L, N, D * H)

    def _split_directions(self, ds):
        """Invert ``_join_directions``: (L, N, D*H) -> (L*D, N, H)."""
        L, N, DH = ds.shape
        D = 2 if self.bidirectional else 1
        return ds.reshape(L, N, D, DH // D).transpose(0, 2, 1, 3).reshape(L * D, N, DH // D)

    # -- encoder and bridge --------------------------------------------------------------
    def _encode(self, src, lengths):
        """Returns keys (N, S, D*H), mask (N, S), decoder initial states [h0 (, c0)] (L, N, H)."""
        src = np.asarray(src)
        lengths = np.asarray(lengths, np.int64)
        N, S = src.shape
        x = self.src_embed(src.T)  # (S, N, E)
        m = self._drop_mask(x.shape)
        if m is not None:
            x = x * m
        e, final = self.encoder(x, lengths=lengths)  # (S, N, D*H)
        finals = [final] if self.cell == "gru" else list(final)  # h_n (, c_n)  (L*D, N, H)
        bridges = [self.bridge] if self.cell == "gru" else [self.bridge, self.bridge_c]
        state0 = [np.tanh(b(self._join_directions(f))) for b, f in zip(bridges, finals)]  # (L, N, H)
        keys = np.ascontiguousarray(e.transpose(1, 0, 2))  # (N, S, D*H)
        mask = np.arange(S)[None, :] < lengths[:, None]  # (N, S)
        return keys, mask, state0, m

    def _encode_backward(self, dkeys, dstate0, state0, m):
        bridges = [self.bridge] if self.cell == "gru" else [self.bridge, self.bridge_c]
        dfinals = []
        for b, ds, s in zip(bridges, dstate0, state0):
            da = ds * (1.0 - s * s)  # d_0 = tanh(a): da = dd_0 (1 - d_0^2)
            dfinals.append(self._split_directions(b.backward(da)))  # (L*D, N, H)
        de = dkeys.transpose(1, 0, 2)  # (S, N, D*H)
        if self.cell == "gru":
            dx, _ = self.encoder.backward(de, dfinals[0])
        else:
            dx, _ = self.encoder.backward(de, tuple(dfinals))
        if m is not None:
            dx = dx * m
        self.src_embed.backward(dx)

    # -- training forward / backward -----------------------------------------------------
    def forward(self, src, lengths, tgt, feed_mask=None, teacher_forcing=1.0):
        """Mean cross-entropy of the batch. ``feed_mask (T, N)`` bool, True where step t is fed
        the model's own previous argmax instead of the gold word (drawn from
        ``teacher_forcing`` when not given). Returns the loss; ``backward`` follows."""
        src, tgt = np.asarray(src), np.asarray(tgt)
        if src.ndim != 2 or tgt.ndim != 2 or src.shape[0] != tgt.shape[0] or tgt.shape[1] < 2:
            raise ValueError(
                f"Seq2Seq: src must be (N, S) and tgt (N, T+1) with T >= 1, got {src.shape} and {tgt.shape}"
            )
        N, T = tgt.shape[0], tgt.shape[1] - 1
        if feed_mask is None and self.training and teacher_forcing < 1.0:
            feed_mask = self.rng.random((T, N)) >= teacher_forcing
            feed_mask[0] = False
        if feed_mask is not None and not np.any(feed_mask):
            feed_mask = None
        keys, mask, state0, m_src = self._encode(src, lengths)
        pk, kcache = self.attention.project(keys) if self.score != "none" else (None, None)
        y_out = tgt[:, 1:]  # (N, T) what each step predicts
        m_tgt = self._drop_mask((T, N, self.embedding_size))
        if self.input_feed or feed_mask is not None:
            ht, dec = self._decode_steps(tgt, keys, pk, mask, state0, feed_mask, m_tgt)
        else:
            ht, dec = self._decode_teacher(tgt, keys, pk, mask, state0, m_tgt)
        m_out = self._drop_mask(ht.shape)
        if m_out is not None:
            ht = ht * m_out
        sel = y_out != PAD  # (N, T) the M real words
        rows = ht[sel]  # (M, H) h~ of the real words
        loss = self.xent(rows, y_out[sel])  # softmax(V h~ + b_v), mean CE
        self._cache = (sel, ht.shape, m_out, dec, keys, kcache, state0, m_src, m_tgt)
        self.n_tokens = int(sel.sum())
        return loss

    def backward(self):
        if self._cache is None:
            raise RuntimeError("Seq2Seq.backward called before forward")
        sel, shape, m_out, dec, keys, kcache, state0, m_src, m_tgt = self._cache
        self._cache = None
        drows = self.xent.backward(wait=False)  # dh~ = dz V; dV in the background
        dht = np.zeros(shape, self.dtype)  # (N, T, H)
        dht[sel] = drows
        if m_out is not None:
            dht *= m_out
        if dec[0] == "teacher":
            dkeys, dpk, dstate0, dx = self._decode_teacher_backward(dht, dec, keys)
        else:
            dkeys, dpk, dstate0, dx = self._decode_steps_backward(dht, dec, keys)
        if m_tgt is not None:
            dx = dx * m_tgt
        self.tgt_embed.backward(dx)  # dE_tgt[y] += dx_t
        if self.score != "none":
            dkeys += self.attention.project_backward(dpk, kcache)
        self._encode_backward(dkeys, dstate0, state0, m_src)
        self.xent.wait()  # ... dV done in the background

    # -- attention and the attentional layer (both paths) ----------------------------------
    def _attend_combine(self, query, keys, pk, mask):
        """query (N, Tq, H) -> h~ (N, Tq, H), cache. Attention 'none': h~ = query."""
        if self.score == "none":
            return query, None
        context, _, scache = self.attention.step(query, keys, pk, mask)  # (N, Tq, D*H)
        cat = np.concatenate([context, query], axis=-1)  # [c_t; d_t]
        Wc, bc = self.combine.params["weight"], self.combine.params["bias"]
        a = mm_last(cat, Wc.T)  # (N, Tq, H)
        a += bc
        ht = np.tanh(a, out=a)  # h~ = tanh(W_c [c; d] + b_c)
        return ht, (scache, cat, ht)

    def _attend_combine_backward(self, dht, cache, DH):
        """Returns dquery (N, Tq, H), dkeys (value path), dpk, da_c (N, Tq, H)."""
        scache, cat, ht = cache
        da = dht * (1.0 - ht * ht)  # da_c = dh~ (1 - h~^2)
        dcat = mm_last(da, self.combine.params["weight"])  # [dc; dd] = da_c W_c
        dq, dkeys, dpk = self.attention.step_backward(dcat[..., :DH], scache)
        dq += dcat[..., DH:]  # d_t enters W_c directly
        return dq, dkeys, dpk, da

    def _combine_grads(self, da, cat):
        """dW_c = sum da_c^T [c; d],  db_c = sum da_c  (one GEMM over all steps)."""
        H = self.hidden_size
        da2 = da.reshape(-1, H)
        self.combine.grads["weight"] += da2.T @ cat.reshape(-1, cat.shape[-1])
        self.combine.grads["bias"] += da2.sum(0)

    # -- the teacher path: one time loop over all T steps ----------------------------------
    def _decode_teacher(self, tgt, keys, pk, mask, state0, m_tgt):
        x = self.tgt_embed(tgt[:, :-1].T)  # (T, N, E) the gold inputs
        if m_tgt is not None:
            x = x * m_tgt
        h0 = state0[0] if self.cell == "gru" else tuple(state0)
        d, _ = self.decoder(x, h0)  # (T, N, H) all steps, one loop
        ht, cache = self._attend_combine(d.transpose(1, 0, 2), keys, pk, mask)  # (N, T, H)
        return ht, ("teacher", cache)

    def _decode_teacher_backward(self, dht, dec, keys):
        N, S, DH = keys.shape
        if self.score == "none":
            dq, dkeys, dpk = dht, np.zeros_like(keys), None
        else:
            dq, dkeys, dpk, da = self._attend_combine_backward(dht, dec[1], DH)
            self._combine_grads(da, dec[1][1])
        dx, dstate0 = self.decoder.backward(dq.transpose(1, 0, 2))  # (T, N, E), (L, N, H)
        return dkeys, dpk, [dstate0] if self.cell == "gru" else list(dstate0), dx

    # -- the step path: one decoder step at a time -----------------------------------------
    def _decode_steps(self, tgt, keys, pk, mask, state0, feed_mask, m_tgt):
        N, T = tgt.shape[0], tgt.shape[1] - 1
        W_emb = self.tgt_embed.params["weight"]
        state, feed, pred = list(state0), None, None
        if self.input_feed:
            feed = np.zeros((N, self.hidden_size), self.dtype)  # h~_0 = 0
        toks = np.empty((T, N), np.int64)
        recs, tape = [], self._steps.tape()
        for t in range(T):
            tok = tgt[:, t]
            if feed_mask is not None and t > 0:
                tok = np.where(feed_mask[t], pred, tok)  # the model's own previous word
            toks[t] = tok
            x = W_emb[tok]  # (N, E)
            if m_tgt is not None:
                x = x * m_tgt[t]
            if feed is not None:
                x = np.concatenate([x, feed], axis=1)  # [E y_{t-1}; h~_{t-1}]
            d, state = self._steps.step(x, state, tape)  # d_t (N, H): the top layer
            ht, cache = self._attend_combine(d[:, None, :], keys, pk, mask)
            ht = ht[:, 0]  # (N, H)
            if feed_mask is not None and t + 1 < T:  # argmax of V h~ + b_v
                pred = np.argmax(ht @ self.out.params["weight"].T + self.out.params["bias"], axis=1)
            if self.input_feed:
                feed = ht
            recs.append((cache, ht))
        self.tgt_embed(toks)  # the fed words, for backward
        return np.stack([r[1] for r in recs], axis=1), ("step", recs, tape)  # (N, T, H)

    def _decode_steps_backward(self, dht, dec, keys):
        _, recs, tape = dec
        N, S, DH = keys.shape
        T, H, E = len(recs), self.hidden_size, self.embedding_size
        dstate = self._steps.initial_state(N)  # no gradient after step T
        dX = np.empty((T, N, E), self.dtype)
        dkeys, dpk, dfeed = np.zeros_like(keys), None, None
        da_all = np.empty((N, T, H), self.dtype)
        for t in range(T - 1, -1, -1):
            cache, _ = recs[t]
            g = dht[:, t : t + 1]  # (N, 1, H)
            if dfeed is not None:
                g = g + dfeed[:, None, :]  # h~_t also fed step t+1
            if self.score == "none":
                dd = g[:, 0]
            else:
                dq, dk, dp, da = self._attend_combine_backward(g, cache, DH)
                da_all[:, t] = da[:, 0]
                dkeys += dk
                if dp is not None:
                    dpk = dp if dpk is None else dpk + dp
                dd = dq[:, 0]
            dx, dstate = self._steps.step_backward(dd, dstate, tape)  # (decoder grads at t = 0)
            dX[t] = dx[:, :E]
            dfeed = dx[:, E:] if self.input_feed else None
        if self.score != "none":
            self._combine_grads(da_all, np.stack([r[0][1][:, 0] for r in recs], axis=1))
        return dkeys, dpk, dstate, dX

    # -- inference: one step at a time ----------------------------------------------------------
    def start(self, src, lengths) -> DecState:
        """Encode a batch for decoding (call in eval mode): the initial ``DecState``."""
        with inference_mode():  # no backward follows
            keys, mask, state0, _ = self._encode(src, lengths)
        pk = self.attention.project(keys)[0] if self.score != "none" else None
        feed = np.zeros((keys.shape[0], self.hidden_size), self.dtype) if self.input_feed else None
        return DecState(state0[0], state0[1] if self.cell == "lstm" else None, feed, keys, pk, mask)

    def step(self, tokens, state: DecState):
        """Feed ``tokens (B,)``; returns ``log p (B, Vt), new DecState, weights (B, S) or None``."""
        x = self.tgt_embed.params["weight"][np.asarray(tokens)]  # (B, E)
        if state.feed is not None:
            x = np.concatenate([x, state.feed], axis=1)
        cells = [state.h] if state.c is None else [state.h, state.c]
        d, new = self._steps.step(x, cells)  # no tape: nothing kept
        ht, cache = self._attend_combine(d[:, None, :], state.keys, state.pk, state.mask)
        ht = ht[:, 0]  # (B, H)
        z = ht @ self.out.params["weight"].T  # (B, Vt)
        z += self.out.params["bias"]
        z = log_softmax(z)  # log p, max-shifted
        weights = None if cache is None else cache[0].weights[:, 0]
        new_state = state._replace(
            h=new[0], c=new[1] if state.c is not None else None, feed=ht if state.feed is not None else None
        )
        return z, new_state, weights
