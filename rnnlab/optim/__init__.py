"""Optimisers and gradient clipping that match ``torch.optim`` step for step."""

from rnnlab.optim.optimizers import SGD, Adam, AdamW, Optimizer, clip_grad_norm

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "clip_grad_norm"]
