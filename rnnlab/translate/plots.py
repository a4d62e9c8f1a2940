"""The attention heatmap: which source word each output word looked at (a_{t,i})."""

from __future__ import annotations

import numpy as np

from rnnlab.io import atomic_write


def plot_attention(source_words, output_words, weights, path, title=None):
    """Save a heatmap of ``weights (len(output_words) [+1 for <eos>], len(source_words))``.

    Rows are the emitted words (and ``<eos>`` when its row is present), columns the source
    words; each row sums to one.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    weights = np.asarray(weights, float)
    rows = list(output_words)
    if weights.shape[0] == len(rows) + 1:
        rows = rows + ["<eos>"]
    if weights.shape != (len(rows), len(source_words)):
        raise ValueError(f"weights must have shape ({len(rows)}, {len(source_words)}), got {weights.shape}")
    fig, ax = plt.subplots(figsize=(max(4.5, 1.2 + 0.6 * len(source_words)), 1.4 + 0.45 * len(rows)))
    im = ax.imshow(weights, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(source_words)), source_words, rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    for t in range(weights.shape[0]):
        for i in range(weights.shape[1]):
            if weights[t, i] >= 0.1:
                ax.text(
                    i,
                    t,
                    f"{weights[t, i]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if weights[t, i] > 0.6 else "black",
                )
    ax.set_title(title or " ".join(source_words), fontsize=9, wrap=True)
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120))
    plt.close(fig)
    return path
