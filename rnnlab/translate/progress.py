"""Progress reporting for ``Translator.fit`` at ``verbose >= 2``: a tqdm bar on a terminal,
a plain line every 30 seconds elsewhere (a log file)."""

from __future__ import annotations

import time


def progress(total, desc):
    """A tqdm bar on a terminal; elsewhere (a log file) a plain line every 30 seconds."""
    import sys

    from tqdm import tqdm

    if sys.stderr.isatty():
        return tqdm(total=total, desc=desc, unit="batch", leave=False)
    return LogProgress(total, desc)


class LogProgress:
    """The part of tqdm's interface ``train_epoch`` uses, printing a line every ``every`` seconds."""

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
