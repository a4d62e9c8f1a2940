"""The command line's progress bars (tqdm, on stderr, gone when done): ``Epochs``, one bar per
network of a fit, ``Paths``, the sample paths' batches (the calibration, the test part's
quantiles, the future's), and ``Classics``, the statistical classics' test origins."""

from __future__ import annotations

import sys
from typing import Any


class Epochs:
    """One tqdm bar per network: epochs, with the running training and validation loss."""

    def __init__(self, cfg, phase: str = ""):
        self.epochs, self.n_members = cfg["epochs"], cfg["ensemble"]
        self.bar: Any = None  # a tqdm bar (untyped), one per network
        self.key: tuple | None = None  # (fold, member, label) of the network it shows
        self.phase = phase

    def __call__(self, fold, n_folds, member, epoch, train_loss, valid_loss, label=None):
        from tqdm import tqdm

        if (fold, member, label) != self.key:
            self.close()
            self.key = (fold, member, label)
            parts = [p for p in (self.phase, label) if p]
            if n_folds > 1:
                parts.append(f"fold {fold + 1}/{n_folds}")
            if self.n_members > 1:
                parts.append(f"net {member + 1}/{self.n_members}")
            self.bar = tqdm(
                total=self.epochs,
                desc=" ".join(parts) or "training",
                unit="epoch",
                leave=False,
                file=sys.stderr,
                dynamic_ncols=True,
            )
        post = {"loss": f"{train_loss:.4f}"}
        if valid_loss is not None:
            post["valid"] = f"{valid_loss:.4f}"
        self.bar.set_postfix(post, refresh=False)
        self.bar.update(epoch - self.bar.n)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class Paths:
    """A labelled tqdm bar fed ``(done, total)``, e.g. the sample paths' ``progress`` hook."""

    def __init__(self, desc: str, unit: str):
        self.desc, self.unit = desc, unit
        self.bar: Any = None  # a tqdm bar (untyped), from the first call

    def __call__(self, done: int, total: int):
        from tqdm import tqdm

        if self.bar is not None and (total != self.bar.total or done < self.bar.n):
            self.close()  # another round of sampling: a bar of its own
        if self.bar is None:
            self.bar = tqdm(total=total, desc=self.desc, unit=self.unit, leave=False, file=sys.stderr)
        self.bar.update(done - self.bar.n)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class Classics:
    """One tqdm bar per statistical classic, ``classics AutoETS`` ..., fed ``(name, done, total)``:
    the test origins forecast (0 while it is fitted)."""

    def __init__(self):
        self.bar: Any = None  # a tqdm bar (untyped), one per classic
        self.name: str | None = None

    def __call__(self, name: str, done: int, total: int):
        from tqdm import tqdm

        if name != self.name or self.bar is None or done < self.bar.n:
            self.close()
            self.name = name
            self.bar = tqdm(total=total, desc=f"classics {name}", unit="origin", leave=False, file=sys.stderr)
        self.bar.update(done - self.bar.n)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        self.name = None
