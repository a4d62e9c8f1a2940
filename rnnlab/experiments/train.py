"""Train each cell on fresh random batches and record the held-out score as data.

One loop serves both tasks::

    for step in 1 .. steps:
        x, y = task(batch_size)                     a fresh batch every step
        loss = L(model(x), y);  backward            loss on the read-out steps only
        clip_grad_norm(clip);  Adam step
        every eval_every steps: score on one fixed test batch  ->  history

Every cell sees the same training batches and the same test batch (both drawn from
``seed``), so the curves differ only by the cell (and its learning rate, when ``lr`` gives
one per cell). Results are plain dicts and lists;
``Experiment.report()`` is the JSON written by ``--report``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from rnnlab import nn, optim
from rnnlab.experiments.models import CELLS, SequenceModel
from rnnlab.experiments.tasks import ADDING_BASELINE_MSE, adding_problem, copy_chance, copy_problem

INIT = "orthogonal: Xavier U_k, orthogonal W_k, zero biases, LSTM forget bias 1"


@dataclass
class Experiment:
    """What a run produced: per-cell results, the models before and after, the test batch."""

    task: str  # "adding" or "copy"
    config: dict
    runs: dict = field(default_factory=dict)  # cell -> {"test_mse" | "accuracy", "history", ...}
    models: dict = field(default_factory=dict)  # cell -> trained SequenceModel
    untrained: dict = field(default_factory=dict)  # cell -> the same model at step 0
    test: tuple = ()  # (x_test, y_test)

    @property
    def metric(self):
        return "test_mse" if self.task == "adding" else "accuracy"

    def report(self):
        """``{cell: {metric: final, "history": [[step, metric], ...], ...}, "config": {...}}``."""
        out = {cell: dict(run) for cell, run in self.runs.items()}
        out["config"] = dict(self.config)
        return out


# ----------------------------------------------------------------------------- checks


def check_cells(cells):
    """'all' or a list of names -> a tuple of cell names; a bad name lists the valid ones."""
    if isinstance(cells, str):
        cells = CELLS if cells == "all" else (cells,)
    cells = tuple(cells)
    bad = [c for c in cells if c not in CELLS]
    if bad or not cells:
        raise ValueError(f"cell must be one of {', '.join(CELLS)} or all, got {bad or cells!r}")
    return cells


def _check(name, value, low, kind=int):
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or (kind is int and int(value) != value) or not value >= low:
        raise ValueError(
            f"{name} must be {'an integer' if kind is int else 'a number'} >= {low}, got {value!r}"
        )
    return kind(value)


def learning_rates(lr, cells):
    """``lr`` as ``{cell: lr}``: one number for every cell, or a dict (the cells it leaves
    out get ``lr["default"]``). The cells do not share a best rate: on the copy task the
    plain RNN learns at 1e-3 and stays at chance at 1e-2, and the GRU the other way round."""
    if isinstance(lr, dict):
        unknown = sorted(set(lr) - set(CELLS) - {"default"})
        if unknown:
            raise ValueError(f"lr keys must be cells ({', '.join(CELLS)}) or 'default', got {unknown}")
        missing = [c for c in cells if c not in lr and "default" not in lr]
        if missing:
            raise ValueError(f"lr gives no rate for {', '.join(missing)} and no 'default'")
        return {c: _check(f"lr[{c}]", lr.get(c, lr.get("default")), 1e-12, float) for c in cells}
    return {c: _check("lr", lr, 1e-12, float) for c in cells}


def _settings(steps, hidden_size, batch_size, lr, clip, eval_every, test_size, seed, cells, time_budget=None):
    rates = learning_rates(lr, cells)
    return {
        "steps": _check("steps", steps, 1),
        "time_budget": None if time_budget is None else _check("time_budget", time_budget, 1e-9, float),
        "hidden_size": _check("hidden_size", hidden_size, 1),
        "batch_size": _check("batch_size", batch_size, 1),
        "lr": rates[cells[0]] if len(set(rates.values())) == 1 else rates,
        "clip": _check("clip", clip, 1e-12, float),
        "eval_every": _check("eval_every", eval_every, 1),
        "test_size": _check("test_size", test_size, 1),
        "seed": _check("seed", seed, 0),
    }


# ----------------------------------------------------------------------------- the loop


def _lr(cfg, cell):
    return cfg["lr"][cell] if isinstance(cfg["lr"], dict) else cfg["lr"]


def _fit(model, batches, loss_fn, score, test, cfg, desc, progress):
    """Train ``model`` for cfg["steps"] Adam steps, or until cfg["time_budget"] minutes have
    passed (then it is scored at the step it stopped); return history [[step, score], ...]."""
    budget = cfg.get("time_budget")
    deadline = None if budget is None else time.perf_counter() + 60.0 * budget
    opt = optim.Adam([model], lr=_lr(cfg, model.cell))
    x_test, y_test = test
    history = [[0, score(model, x_test, y_test)]]
    bar = tqdm(
        range(1, cfg["steps"] + 1),
        desc=desc,
        disable=not progress,
        leave=True,
        mininterval=0.5,
        dynamic_ncols=True,
    )
    for step in bar:
        x, y = batches()
        model.zero_grad()
        loss_fn(model(x), y)  # loss on the read-out steps
        model.backward(loss_fn.backward())
        optim.clip_grad_norm([model], cfg["clip"])
        opt.step()
        out_of_time = deadline is not None and time.perf_counter() > deadline
        if step % cfg["eval_every"] == 0 or step == cfg["steps"] or out_of_time:
            history.append([step, score(model, x_test, y_test)])
            bar.set_postfix_str(f"test={history[-1][1]:.4f}")
        if out_of_time:
            break
    bar.close()
    return history


def _predict(model, x, chunk=128):
    """model(x) over the test batch in chunks of sequences, so memory stays that of a chunk."""
    return np.concatenate([model(x[:, k : k + chunk]) for k in range(0, x.shape[1], chunk)], axis=1)


def _mse(model, x, y):
    return float(np.mean((_predict(model, x)[0].astype(np.float64) - y) ** 2))  # y_hat (1,N,1)[0]


def _accuracy(model, x, y):
    return float(np.mean(_predict(model, x).argmax(-1) == y))  # (K, N) symbols right


def run_adding(
    cells="all",
    length=100,
    steps=2000,
    hidden_size=128,
    batch_size=32,
    lr=1e-2,
    clip=1.0,
    eval_every=100,
    test_size=500,
    seed=0,
    progress=True,
    time_budget=None,
):
    """Train each cell on the adding problem with sequences of ``length`` steps.

    Returns an ``Experiment`` whose runs hold ``test_mse`` (final), ``history``
    ``[[step, test_mse], ...]``, ``lr``, ``wall_time_s``; the config holds the constant-1
    baseline (exact 1/6 and as measured on the test batch). ``lr`` is one Adam rate for every
    cell or a dict ``{"default": 1e-2, "rnn": 1e-3}`` (see ``learning_rates``). ``time_budget``:
    minutes each cell may train before it stops short of ``steps`` (None: no limit).
    """
    cells = check_cells(cells)
    length = _check("length", length, 2)
    cfg = _settings(steps, hidden_size, batch_size, lr, clip, eval_every, test_size, seed, cells, time_budget)
    test = adding_problem(cfg["test_size"], length, np.random.default_rng([cfg["seed"], 1]))
    config = {
        "task": "adding",
        "cells": list(cells),
        "length": length,
        **cfg,
        "optimizer": "Adam",
        "init": INIT,
        "loss": "MSE on y_hat_T = V h_T + b",
        "baseline_mse": ADDING_BASELINE_MSE,
        "baseline_test_mse": float(np.mean((test[1].astype(np.float64) - 1.0) ** 2)),
    }
    exp = Experiment("adding", config, test=test)
    for cell in cells:
        model = SequenceModel(cell, 2, cfg["hidden_size"], 1, n_out=1, seed=cfg["seed"])
        exp.untrained[cell] = model.astype(model.rnn.dtype)  # a copy that stays at step 0
        rng = np.random.default_rng([cfg["seed"], 2])  # same batches for every cell

        def batches(rng=rng):
            x, y = adding_problem(cfg["batch_size"], length, rng)
            return x, y[None]  # (1, N, 1) like y_hat

        t0 = time.perf_counter()
        history = _fit(model, batches, nn.MSELoss(), _mse, test, cfg, f"adding {cell} T={length}", progress)
        exp.runs[cell] = {
            "test_mse": history[-1][1],
            "history": history,
            "lr": _lr(cfg, cell),
            "wall_time_s": round(time.perf_counter() - t0, 2),
        }
        exp.models[cell] = model
    return exp


def run_copy(
    cells="all",
    length=20,
    steps=2000,
    hidden_size=128,
    batch_size=32,
    lr=1e-2,
    clip=1.0,
    eval_every=100,
    test_size=500,
    seed=0,
    n_symbols=8,
    n_recall=5,
    progress=True,
    time_budget=None,
):
    """Train each cell on the copy task: remember ``n_recall`` symbols across ``length`` blanks.

    Returns an ``Experiment`` whose runs hold ``accuracy`` (final per-symbol accuracy on the
    test batch), ``history`` ``[[step, accuracy], ...]``, ``lr``, ``wall_time_s``; the config
    holds the chance level 1 / n_symbols. ``lr`` as in ``run_adding``.
    """
    cells = check_cells(cells)
    length = _check("length", length, 0)
    n_symbols, n_recall = _check("n_symbols", n_symbols, 2), _check("n_recall", n_recall, 1)
    cfg = _settings(steps, hidden_size, batch_size, lr, clip, eval_every, test_size, seed, cells, time_budget)

    def draw(n, rng):
        return copy_problem(n, length, rng, n_symbols=n_symbols, n_recall=n_recall)

    test = draw(cfg["test_size"], np.random.default_rng([cfg["seed"], 1]))
    config = {
        "task": "copy",
        "cells": list(cells),
        "length": length,
        "n_symbols": n_symbols,
        "n_recall": n_recall,
        **cfg,
        "optimizer": "Adam",
        "init": INIT,
        "loss": "cross-entropy on the recall steps",
        "chance": copy_chance(n_symbols),
    }
    exp = Experiment("copy", config, test=test)
    for cell in cells:
        _copy_cell(exp, cell, cfg, draw, progress)
    return exp


def _copy_cell(exp, cell, cfg, draw, progress):
    """Train ``cell`` on the copy task's batches ``draw(n, rng)`` (the same for every cell);
    its run, its trained model and its untrained copy go into ``exp``."""
    length, n_symbols, n_recall = exp.config["length"], exp.config["n_symbols"], exp.config["n_recall"]
    model = SequenceModel(
        cell, n_symbols + 2, cfg["hidden_size"], n_symbols, n_out=n_recall, seed=cfg["seed"]
    )
    exp.untrained[cell] = model.astype(model.rnn.dtype)  # a copy that stays at step 0
    rng = np.random.default_rng([cfg["seed"], 2])
    t0 = time.perf_counter()
    history = _fit(
        model,
        lambda rng=rng: draw(cfg["batch_size"], rng),
        nn.CrossEntropyLoss(),
        _accuracy,
        exp.test,
        cfg,
        f"copy {cell} T={length}",
        progress,
    )
    exp.runs[cell] = {
        "accuracy": history[-1][1],
        "history": history,
        "lr": _lr(cfg, cell),
        "wall_time_s": round(time.perf_counter() - t0, 2),
    }
    exp.models[cell] = model
