"""Training returns data; the short CI version shows the learning signal."""

import json

import numpy as np
import pytest

from rnnlab.experiments import ADDING_BASELINE_MSE, SequenceModel, probes, run_adding, run_copy


def test_lstm_beats_the_constant_predictor_on_a_short_adding_problem():
    # T=10 takes ~1.5 s; across seeds 0-3 the LSTM ends at test MSE 0.002-0.005 (baseline 0.167)
    exp = run_adding(
        "lstm",
        length=10,
        steps=300,
        hidden_size=16,
        batch_size=32,
        lr=1e-2,
        eval_every=50,
        test_size=200,
        seed=0,
        progress=False,
    )
    run = exp.runs["lstm"]
    baseline = exp.config["baseline_test_mse"]
    assert run["history"][0][1] > baseline, "the untrained model should be no better than 1"
    assert run["test_mse"] < 0.2 * baseline, f"LSTM test MSE {run['test_mse']:.4f} vs {baseline:.4f}"


def test_report_schema_and_history():
    exp = run_adding(
        ["rnn", "gru"], length=6, steps=20, hidden_size=8, eval_every=7, test_size=16, progress=False
    )
    report = json.loads(json.dumps(exp.report()))  # JSON all the way down
    assert set(report) == {"rnn", "gru", "config"}
    for cell in ("rnn", "gru"):
        entry = report[cell]
        steps = [s for s, _ in entry["history"]]
        assert steps == [0, 7, 14, 20]
        assert entry["test_mse"] == entry["history"][-1][1]
        assert all(np.isfinite(v) and v >= 0 for _, v in entry["history"])
    cfg = report["config"]
    assert cfg["length"] == 6 and cfg["steps"] == 20 and cfg["cells"] == ["rnn", "gru"]
    assert cfg["baseline_mse"] == pytest.approx(ADDING_BASELINE_MSE)


def test_same_seed_same_curves_and_models_snapshotted():
    kw = dict(length=5, steps=10, hidden_size=6, eval_every=5, test_size=8, progress=False)
    a, b = run_adding("gru", seed=3, **kw), run_adding("gru", seed=3, **kw)
    assert a.runs["gru"]["history"] == b.runs["gru"]["history"]
    w0 = a.untrained["gru"].rnn.params["weight_hh_l0"]
    w1 = a.models["gru"].rnn.params["weight_hh_l0"]
    assert not np.array_equal(w0, w1), "the untrained snapshot must not move with training"


def test_copy_report_uses_accuracy_and_chance():
    exp = run_copy(
        "lstm",
        length=3,
        steps=10,
        hidden_size=8,
        eval_every=5,
        test_size=20,
        n_symbols=4,
        n_recall=2,
        progress=False,
    )
    rep = exp.report()
    assert set(rep["lstm"]) >= {"accuracy", "history"} and "test_mse" not in rep["lstm"]
    assert rep["config"]["chance"] == pytest.approx(0.25)
    assert all(0.0 <= v <= 1.0 for _, v in rep["lstm"]["history"])


def test_copy_learning_signal():
    # 3 of 4 symbols after 5 blanks: seeds 0-2 end at 83-88% in 200 steps (chance 25%)
    exp = run_copy(
        "lstm",
        length=5,
        steps=200,
        hidden_size=16,
        lr=1e-2,
        eval_every=100,
        test_size=200,
        n_symbols=4,
        n_recall=3,
        progress=False,
    )
    assert exp.runs["lstm"]["accuracy"] > 0.6


def test_gradient_norms_and_gates_shapes():
    exp = run_adding("all", length=12, steps=3, hidden_size=5, test_size=10, progress=False)
    norms = probes.gradient_norms(exp)
    for cell in ("rnn", "lstm", "gru"):
        for state in ("untrained", "trained"):
            g = norms[cell][state]
            assert g.shape == (12,) and np.all(g > 0)
    gates = probes.lstm_gates(exp.models["lstm"], exp.test[0], example=2)
    for k in ("i", "f", "o", "g", "c"):
        assert gates[k].shape == (12, 5)
    np.testing.assert_array_equal(gates["x"], exp.test[0][:, 2])
    assert np.all((gates["f"] > 0) & (gates["f"] < 1))
    with pytest.raises(ValueError, match="LSTM"):
        probes.lstm_gates(exp.models["gru"], exp.test[0])


def test_gradient_norms_match_the_head_gradient_at_the_last_step():
    # ||dL/dh_T|| must equal ||V^T dL/dy_hat|| computed by hand from the MSE
    model = SequenceModel("rnn", 2, 4, 1, seed=0)
    x = np.random.default_rng(0).random((7, 3, 2)).astype(np.float32)
    y = np.ones((1, 3, 1), np.float32)
    norms = probes.hidden_grad_norms(model, x, y)
    assert all(np.all(g == 0) for _, _, g in model.named_parameters()), "model left untouched"
    y_hat = model(x).astype(np.float64)
    dy = 2 * (y_hat - y) / y.size  # (1, N, 1)
    dh_T = dy[0] @ model.head.params["weight"]  # (N, H)
    assert norms[-1] == pytest.approx(np.linalg.norm(dh_T), rel=1e-5)


def test_astype_copies_the_model_exactly():
    model = SequenceModel("lstm", 2, 4, 1, seed=5)
    twin = model.astype(np.float64)
    x = np.random.default_rng(1).random((6, 3, 2))
    np.testing.assert_allclose(twin(x), model(x.astype(np.float32)), rtol=1e-5)
    assert twin.rnn.params["weight_hh_l0"].dtype == np.float64


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(cells="transformer"), "rnn, lstm, gru or all"),
        (dict(steps=0), "steps must be"),
        (dict(lr=-1.0), "lr must be"),
        (dict(length=1), "length must be"),
        (dict(hidden_size=2.5), "hidden_size must be"),
    ],
)
def test_bad_arguments_are_clear(kwargs, match):
    with pytest.raises(ValueError, match=match):
        run_adding(progress=False, **kwargs)


def test_forget_bias_starts_at_one():
    model = SequenceModel("lstm", 2, 6, 1, seed=0)
    p = model.rnn.params
    b_f = p["bias_ih_l0"][6:12] + p["bias_hh_l0"][6:12]  # gate order i, f, g, o
    np.testing.assert_allclose(b_f, 1.0, atol=1e-6)


@pytest.mark.slow
def test_the_chapters_claim_at_T50():
    # ~25 s: at T=50 the gated cells solve the adding problem and the plain RNN does not;
    # measured (seed 0): LSTM 0.0011, GRU 0.0003, RNN 0.17-0.19 after 1000 steps. The share
    # of the gradient at T that the trained RNN passes back to t=1 is chaotic in the float32
    # rounding of its 1000 steps (1e-26 when this test was written, 5e-13 at a3e0a7d, 3e-3
    # since 284a387, with the GEMM library's choice moving it too); the LSTM passes ~0.1 and
    # the GRU ~0.3, so the claim is checked as a ratio: the RNN passes far less than both
    exp = run_adding(
        "all",
        length=50,
        steps=1000,
        hidden_size=32,
        lr=1e-2,
        eval_every=100,
        test_size=300,
        seed=0,
        progress=False,
    )
    mse = {cell: run["test_mse"] for cell, run in exp.runs.items()}
    baseline = exp.config["baseline_test_mse"]
    assert mse["lstm"] < 0.02 and mse["gru"] < 0.02, mse
    assert mse["rnn"] > 0.5 * baseline, mse
    reach = {cell: g["trained"][0] / g["trained"][-1] for cell, g in probes.gradient_norms(exp).items()}
    assert reach["lstm"] > 1e-3 and reach["gru"] > 1e-3, reach
    assert reach["rnn"] < 0.1 * min(reach["lstm"], reach["gru"]), reach


def test_learning_rates_per_cell():
    from rnnlab.experiments.train import learning_rates

    assert learning_rates(0.01, ("rnn", "gru")) == {"rnn": 0.01, "gru": 0.01}
    assert learning_rates({"default": 0.01, "rnn": 0.001}, ("rnn", "lstm")) == {"rnn": 0.001, "lstm": 0.01}
    with pytest.raises(ValueError, match="no rate for lstm"):
        learning_rates({"rnn": 0.001}, ("rnn", "lstm"))
    with pytest.raises(ValueError, match="lr keys"):
        learning_rates({"elman": 0.001}, ("rnn",))
