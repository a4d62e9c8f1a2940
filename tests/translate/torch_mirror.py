"""A PyTorch mirror of rnnlab.translate.model.Seq2Seq (autograd does every backward).

Same module names as the numpy model, so ``mirror.load_state_dict(ours.state_dict())`` copies
the weights. The decoder always steps in time (torch.nn.GRU/LSTM on one step at a time), the
encoder uses pack_padded_sequence, attention is written from its equations.
"""

import numpy as np
import torch
from torch import nn


def torch_scores(score, p, q, k):
    Hk = k.shape[-1]
    if score == "none":
        return torch.zeros(q.shape[0], q.shape[1], k.shape[1], dtype=q.dtype) + 0 * q.sum()
    if score == "dot":
        return q @ k.transpose(1, 2)
    if score == "scaled_dot":
        return q @ k.transpose(1, 2) / Hk**0.5
    if score == "cosine":
        qn = torch.sqrt((q * q).sum(-1, keepdim=True) + 1e-12)
        kn = torch.sqrt((k * k).sum(-1, keepdim=True) + 1e-12)
        return (q / qn) @ (k / kn).transpose(1, 2)
    if score == "general":
        return q @ (k @ p["weight"].T).transpose(1, 2)
    e = torch.tanh(
        (q @ p["weight_query"].T)[:, :, None, :] + (k @ p["weight_key"].T + p["bias"])[:, None, :, :]
    )
    return e @ p["v"]


def torch_attention(score, p, q, k, mask):
    s = torch_scores(score, p, q, k)
    if mask is not None:
        s = s.masked_fill(~mask[:, None, :], float("-inf"))
    a = torch.softmax(s, -1)
    return a @ k, a


class Mirror(nn.Module):
    def __init__(self, ours):
        super().__init__()
        c = ours.config()
        E, H, L, bi = c["embedding_size"], c["hidden_size"], c["num_layers"], c["bidirectional"]
        RNN = nn.GRU if c["cell"] == "gru" else nn.LSTM
        D = 2 if bi else 1
        self.c = c
        self.src_embed = nn.Embedding(c["src_vocab_size"], E, padding_idx=0)
        self.encoder = RNN(E, H, L, bidirectional=bi, batch_first=True)
        self.bridge = nn.Linear(D * H, H)
        if c["cell"] == "lstm":
            self.bridge_c = nn.Linear(D * H, H)
        self.tgt_embed = nn.Embedding(c["tgt_vocab_size"], E, padding_idx=0)
        self.decoder = RNN(E + (H if c["input_feed"] else 0), H, L, batch_first=True)
        if c["attention"] != "none":
            self.attention = nn.ParameterDict(
                {k: nn.Parameter(torch.tensor(v)) for k, v in ours.attention.params.items()}
            )
            self.combine = nn.Linear(D * H + H, H)
        self.out = nn.Linear(H, c["tgt_vocab_size"])
        self.double()
        self.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})

    def join(self, s):
        L, D = self.c["num_layers"], 2 if self.c["bidirectional"] else 1
        N, H = s.shape[1], s.shape[2]
        return s.view(L, D, N, H).permute(0, 2, 1, 3).reshape(L, N, D * H)

    def loss(self, src, lengths, tgt, feed_mask=None):
        c = self.c
        src, tgt = torch.tensor(src), torch.tensor(tgt)
        N, S = src.shape
        T = tgt.shape[1] - 1
        packed = nn.utils.rnn.pack_padded_sequence(
            self.src_embed(src), torch.tensor(lengths), batch_first=True, enforce_sorted=False
        )
        e, fin = self.encoder(packed)
        e, _ = nn.utils.rnn.pad_packed_sequence(e, batch_first=True, total_length=S)
        mask = torch.arange(S)[None, :] < torch.tensor(lengths)[:, None]
        if c["cell"] == "gru":
            hid = torch.tanh(self.bridge(self.join(fin)))
        else:
            hid = (torch.tanh(self.bridge(self.join(fin[0]))), torch.tanh(self.bridge_c(self.join(fin[1]))))
        feed = torch.zeros(N, c["hidden_size"], dtype=torch.float64)
        hts, pred = [], None
        for t in range(T):
            tok = tgt[:, t]
            if feed_mask is not None and t > 0:
                tok = torch.where(torch.tensor(feed_mask[t]), pred, tok)
            x = self.tgt_embed(tok)
            if c["input_feed"]:
                x = torch.cat([x, feed], 1)
            d, hid = self.decoder(x[:, None, :], hid)
            if c["attention"] == "none":
                ht = d[:, 0]
            else:
                ctx, _ = torch_attention(c["attention"], self.attention, d, e, mask)
                ht = torch.tanh(self.combine(torch.cat([ctx[:, 0], d[:, 0]], 1)))
            pred = self.out(ht).argmax(1)
            feed = ht
            hts.append(ht)
        logits = self.out(torch.stack(hts, 1))
        return nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), tgt[:, 1:].reshape(-1), ignore_index=0
        )


def random_batch(rng, N, S, T, Vs, Vt):
    """Right-padded ids with <sos>/<eos> (0 pad, 2 sos, 3 eos), varied lengths (one full)."""
    lengths = rng.integers(1, S + 1, N)
    lengths[0] = S
    src = np.zeros((N, S), np.int64)
    for n, L in enumerate(lengths):
        src[n, :L] = rng.integers(4, Vs, L)
    tl = rng.integers(1, T, N)
    tl[1] = T - 1
    tgt = np.zeros((N, T + 1), np.int64)
    tgt[:, 0] = 2
    for n, L in enumerate(tl):
        tgt[n, 1 : L + 1] = rng.integers(4, Vt, L)
        tgt[n, L + 1] = 3
    return src, lengths, tgt
