"""Pictures a learner can read: learning curves, gradient norms over time, LSTM gates.

Each function takes the data returned by ``train`` / ``probes`` and writes one PNG.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402

from rnnlab.io import atomic_write  # noqa: E402

COLORS = {"rnn": "tab:red", "lstm": "tab:blue", "gru": "tab:green"}
NAMES = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}


def plot_history(exp, path):
    """Test score over training steps, one line per cell, against the baseline."""
    cfg = exp.config
    fig, ax = plt.subplots(figsize=(8, 4.8), dpi=110)
    for cell, run in exp.runs.items():
        h = np.asarray(run["history"], float)  # (evals, 2) step, score
        ax.plot(
            h[:, 0],
            h[:, 1],
            color=COLORS[cell],
            lw=2,
            label=f"{NAMES[cell]} (final {h[-1, 1]:.4f})"
            if exp.task == "adding"
            else f"{NAMES[cell]} (final {h[-1, 1]:.1%})",
        )
    if exp.task == "adding":
        ax.axhline(
            cfg["baseline_test_mse"],
            color="black",
            ls="--",
            lw=1.5,
            label=f"predict 1 always: MSE {cfg['baseline_test_mse']:.3f} on this test batch "
            f"(1/6 = {cfg['baseline_mse']:.3f} on average)",
        )
        ax.axhline(
            1 / 12,
            color="black",
            ls="-.",
            lw=1,
            alpha=0.6,
            label="knows only the second number: 1/12 = 0.083",
        )
        ax.axhline(0.01, color="gray", ls=":", lw=1.5, label="MSE 0.01")
        ax.set_yscale("log")
        ax.set_ylabel("test MSE (log scale)")
        ax.set_title(
            f"Adding problem, T = {cfg['length']}: who carries the first number {cfg['length'] // 2}+ steps?"
        )
    else:
        ax.axhline(
            cfg["chance"],
            color="black",
            ls="--",
            lw=1.5,
            label=f"chance (1/{cfg['n_symbols']} = {cfg['chance']:.1%})",
        )
        ax.set_ylim(0, 1.02)
        ax.set_ylabel("per-symbol test accuracy")
        ax.set_title(f"Copy task: recall {cfg['n_recall']} symbols after {cfg['length']} blank steps")
    lr = cfg["lr"]
    lr = ", ".join(f"{NAMES[c]} {v:g}" for c, v in lr.items()) if isinstance(lr, dict) else f"{lr:g}"
    ax.set_xlabel(
        f"training step (batch {cfg['batch_size']}, hidden {cfg['hidden_size']}, "
        f"Adam lr {lr}, clip {cfg['clip']:g})"
    )
    ax.grid(True, which="both", alpha=0.3)
    _legend_below(fig, ax)
    atomic_write(path, fig.savefig)
    plt.close(fig)
    return path


def _legend_below(fig, ax, ncol=2):
    """The legend under the axes, so it never hides a curve."""
    handles, labels = ax.get_legend_handles_labels()
    rows = -(-len(labels) // ncol)
    fig.tight_layout(rect=(0, 0.045 * rows + 0.02, 1, 1))
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=9, frameon=False)


def plot_gradients(norms, path, title=None):
    """``||dL/dh_t|| / ||dL/dh_T||`` over t, log scale: dashed untrained, solid trained."""
    fig, ax = plt.subplots(figsize=(8, 5.4), dpi=110)
    T = None
    for cell, pair in norms.items():
        for state, ls in (("untrained", "--"), ("trained", "-")):
            g = np.asarray(pair[state], float)  # (T,)
            T = len(g)
            ratio = g / g[-1]
            ax.plot(
                np.arange(1, T + 1),
                np.where(ratio > 0, ratio, np.nan),
                color=COLORS[cell],
                ls=ls,
                lw=2 if state == "trained" else 1.5,
                label=f"{NAMES[cell]}, {state}",
            )
    ax.set_yscale("log")
    ax.set_xlabel("time step t (the loss is on the last step T only)")
    ax.set_ylabel("||dL/dh_t|| / ||dL/dh_T||   (log scale)")
    ax.set_title(title or f"How much of the gradient at T = {T} reaches step t")
    ax.grid(True, which="both", alpha=0.3)
    _legend_below(fig, ax, ncol=3)
    atomic_write(path, fig.savefig)
    plt.close(fig)
    return path


def plot_gates(gates, path, n_units=32, title=None):
    """Heatmaps of the LSTM's forget, input and output gates (units x time) for one example,
    under its input; black triangles mark the adding problem's two marked steps."""
    x = np.asarray(gates["x"])  # (T, I)
    T = x.shape[0]
    f, i, o, c = (np.asarray(gates[k]) for k in ("f", "i", "o", "c"))  # each (T, H)
    marks = np.flatnonzero(x[:, 1] > 0.5) if x.shape[1] == 2 else np.array([], int)
    units = _gate_units(f, c, marks, n_units)
    c = c / np.maximum(np.abs(c).max(0), 1e-12)  # each unit scaled to its max |c|
    rows = [
        ("input", None),
        ("forget gate f_t", f),
        ("input gate i_t", i),
        ("output gate o_t", o),
        ("cell state c_t\n/ max |c|", c),
    ]
    fig = plt.figure(figsize=(9, 11), dpi=110)
    grid = fig.add_gridspec(
        len(rows), 2, width_ratios=[1, 0.025], wspace=0.03, height_ratios=[0.6, 1, 1, 1, 1]
    )
    axes: list[plt.Axes] = []
    t = np.arange(1, T + 1)
    for r, (name, a) in enumerate(rows):
        ax = fig.add_subplot(grid[r, 0], sharex=axes[0] if axes else None)
        axes.append(ax)
        if a is None:
            _input_panel(ax, x, t, marks)
            continue
        im = _gate_panel(ax, name, a, units, marks, T)
        fig.colorbar(im, cax=fig.add_subplot(grid[r, 1]))
    for ax in axes[:-1]:
        ax.tick_params(labelbottom=False)
    axes[-1].xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    axes[-1].set_xlabel("time step t")
    if title:
        fig.suptitle(title, y=0.995)
    fig.subplots_adjust(left=0.1, right=0.93, top=0.95, bottom=0.05, hspace=0.12)
    atomic_write(path, fig.savefig)
    plt.close(fig)
    return path


def _gate_units(f, c, marks, n_units):
    """The ``n_units`` units to show: those whose cell state jumps most at the marked steps
    (those doing the remembering), or whose cell state moves most when there are no marks;
    then ordered by how much they remember (mean forget gate, highest first)."""
    dc = np.abs(np.diff(c, axis=0, prepend=0.0))  # (T, H) |c_t - c_{t-1}|
    moved = dc[marks].sum(0) if len(marks) else np.abs(c).max(0)
    units = np.argsort(-moved)[:n_units]
    return units[np.argsort(-f[:, units].mean(0))]  # then by how much they remember


def _input_panel(ax, x, t, marks):
    """The top panel: the adding problem's values with the marked steps in black, or the
    copy task's one-hot symbols (A symbols, blank, go) as an image."""
    T = x.shape[0]
    if x.shape[1] == 2:
        ax.bar(t, x[:, 0], color="lightgray", width=1.0, label="value v_t")
        ax.bar(t[marks], x[marks, 0], color="black", width=1.0, label="marked")
        ax.set_ylabel("input v_t")
        ax.set_title(
            f"One test example: target {x[marks, 0].sum():.3f} = sum of the "
            f"values at marked steps {' and '.join(str(m + 1) for m in marks)}"
        )
        ax.legend(loc="upper right", fontsize=8, framealpha=0.9)
    else:
        A = x.shape[1] - 2  # copy task: A symbols, blank, go
        ax.imshow(
            x.T,
            aspect="auto",
            cmap="Greys",
            interpolation="nearest",
            extent=(0.5, T + 0.5, x.shape[1] - 0.5, -0.5),
        )
        ax.set_yticks([0, A - 1, A, A + 1], ["s 0", f"s {A - 1}", "blank", "go"])
        ax.set_ylabel("input")
        ax.set_title("One test example: read the symbols, wait, see go, recall")
    ax.set_xlim(0.5, T + 0.5)


def _gate_panel(ax, name, a, units, marks, T):
    """One heatmap (units x time) of ``a`` (T, H) at ``units``: a gate in [0, 1] (viridis) or
    the scaled cell state in [-1, 1] (red-blue), a tick above each marked step; returns the image."""
    extent = (0.5, T + 0.5, len(units) - 0.5, -0.5)
    if name.startswith("cell"):
        im = ax.imshow(
            a[:, units].T,
            aspect="auto",
            cmap="RdBu_r",
            vmin=-1,
            vmax=1,
            interpolation="nearest",
            extent=extent,
        )
    else:
        im = ax.imshow(
            a[:, units].T,
            aspect="auto",
            cmap="viridis",
            vmin=0,
            vmax=1,
            interpolation="nearest",
            extent=extent,
        )
    for m in marks:  # a tick above each marked step
        ax.plot([m + 1], [-0.5], marker="v", ms=7, color="black", clip_on=False)
    ax.set_ylabel(f"{name}\nunit")
    return im
