"""Linear, Embedding and Dropout: the non-recurrent pieces.

Linear::      y = x V^T + b            dV = dy^T x    db = sum dy    dx = dy V
Embedding::   y = E[idx]               dE[idx] += dy  (rows at padding_idx get no gradient)
Dropout::     y = x * m / (1 - p),  m ~ Bernoulli(1 - p)   dx = dy * m / (1 - p)
"""

from __future__ import annotations

import numpy as np

from rnnlab.nn.module import Module


class Linear(Module):
    """``y = x V^T + b`` over the last axis; x is (..., in_features)."""

    def __init__(self, in_features, out_features, bias=True, dtype=np.float32, seed=None):
        super().__init__()
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.dtype = np.dtype(dtype)
        rng = np.random.default_rng(seed)
        k = 1.0 / np.sqrt(self.in_features)  # PyTorch's kaiming_uniform(a=sqrt 5) bound
        self.params["weight"] = rng.uniform(-k, k, (self.out_features, self.in_features)).astype(self.dtype)
        if bias:
            self.params["bias"] = rng.uniform(-k, k, self.out_features).astype(self.dtype)
        self._init_grads()
        self._x = None

    def forward(self, x):
        x = np.asarray(x, self.dtype)
        if x.shape[-1] != self.in_features:
            raise ValueError(f"Linear: last axis must be {self.in_features}, got shape {x.shape}")
        self._x = x
        y = x @ self.params["weight"].T  # (..., out)  V x
        if "bias" in self.params:
            y += self.params["bias"]  # + b
        return y

    def backward(self, dy):
        if self._x is None:
            raise RuntimeError("Linear.backward called before forward")
        dy = np.asarray(dy, self.dtype)
        x2 = self._x.reshape(-1, self.in_features)
        dy2 = dy.reshape(-1, self.out_features)
        self.grads["weight"] += dy2.T @ x2  # dV = sum dy x^T
        if "bias" in self.params:
            self.grads["bias"] += dy2.sum(0)  # db = sum dy
        return dy @ self.params["weight"]  # dx = V^T dy


class Embedding(Module):
    """``y = weight[idx]``; ``padding_idx`` rows start at zero and never get a gradient."""

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, dtype=np.float32, seed=None):
        super().__init__()
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        if padding_idx is not None and not -num_embeddings <= padding_idx < num_embeddings:
            raise ValueError(
                f"padding_idx must be within num_embeddings ({num_embeddings}), got {padding_idx}"
            )
        self.padding_idx = None if padding_idx is None else padding_idx % self.num_embeddings
        self.dtype = np.dtype(dtype)
        rng = np.random.default_rng(seed)
        self.params["weight"] = rng.standard_normal((self.num_embeddings, self.embedding_dim)).astype(
            self.dtype
        )
        if self.padding_idx is not None:
            self.params["weight"][self.padding_idx] = 0.0
        self._init_grads()
        self._idx = None

    def forward(self, idx):
        idx = np.asarray(idx)
        if not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"Embedding expects integer indices, got dtype {idx.dtype}")
        if idx.size and (idx.min() < 0 or idx.max() >= self.num_embeddings):
            raise ValueError(
                f"Embedding indices must lie in [0, {self.num_embeddings}), "
                f"got min {idx.min()} max {idx.max()}"
            )
        self._idx = idx
        return self.params["weight"][idx]

    def backward(self, dy):
        if self._idx is None:
            raise RuntimeError("Embedding.backward called before forward")
        dy = np.asarray(dy, self.dtype).reshape(-1, self.embedding_dim)
        idx = self._idx.reshape(-1)
        if self.padding_idx is not None:
            keep = idx != self.padding_idx
            idx, dy = idx[keep], dy[keep]
        np.add.at(self.grads["weight"], idx, dy)  # dE[idx] += dy
        return None


class Dropout(Module):
    """Inverted dropout: active in ``train()`` mode, the identity in ``eval()``."""

    def __init__(self, p=0.5, seed=None):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = float(p)
        self.rng = np.random.default_rng(seed)
        self._scale = None

    def forward(self, x):
        x = np.asarray(x)
        if not self.training or self.p == 0.0:
            self._scale = None
            return x
        self._scale = ((self.rng.random(x.shape) >= self.p) / (1.0 - self.p)).astype(x.dtype)
        return x * self._scale

    def backward(self, dy):
        return dy if self._scale is None else dy * self._scale
