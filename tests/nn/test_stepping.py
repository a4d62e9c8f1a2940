"""StackedCell (rnnlab/nn/stepping.py): one step at a time gives exactly what the layer gives
over the whole sequence, forward and backward, every tensor (float64, 1e-12)."""

import numpy as np
import pytest
from conftest import assert_close

import rnnlab.nn as rnn
from rnnlab.nn import runtime

CELLS = [
    ("LSTM", {}),
    ("GRU", {"reset_after": True}),
    ("GRU", {"reset_after": False}),
    ("RNN", {}),
    ("RNN", {"nonlinearity": "relu"}),
]


@pytest.mark.parametrize("mode,kw", CELLS, ids=["lstm", "gru", "gru-before", "rnn", "rnn-relu"])
@pytest.mark.parametrize("L,bias", [(1, True), (2, True), (3, False)], ids=["L1", "L2", "L3-nobias"])
def test_steps_equal_the_layer(mode, kw, L, bias):
    T, N, I, H = 5, 3, 4, 6
    rng = np.random.default_rng(L)
    m = getattr(rnn, mode)(I, H, num_layers=L, bias=bias, dtype=np.float64, seed=L, **kw)
    x = rng.standard_normal((T, N, I))
    dout = rng.standard_normal((T, N, H))
    states0 = [rng.standard_normal((L, N, H)) for _ in range(2 if mode == "LSTM" else 1)]
    dfinal = [rng.standard_normal((L, N, H)) for _ in states0]
    lstm = mode == "LSTM"
    with runtime.override(backend="numpy"):
        out, fin = m(x, tuple(states0) if lstm else states0[0])
        dx, d0 = m.backward(dout, tuple(dfinal) if lstm else dfinal[0])
    ref = {"out": out, "dx": dx, **{f"grad {k}": v.copy() for k, v in m.grads.items()}}
    ref.update({f"final {i}": v for i, v in enumerate(fin if lstm else [fin])})
    ref.update({f"d state0 {i}": v for i, v in enumerate(d0 if lstm else [d0])})

    m.zero_grad()
    cell = rnn.StackedCell(m)
    tape = cell.tape()
    state, outs = [s.copy() for s in states0], []
    for t in range(T):
        o, state = cell.step(x[t], state, tape)
        outs.append(o)
    assert len(tape) == T
    dstate, dxs = dfinal, [None] * T
    for t in range(T - 1, -1, -1):
        dxs[t], dstate = cell.step_backward(dout[t], dstate, tape)
    got = {"out": np.stack(outs), "dx": np.stack(dxs), **{f"grad {k}": v.copy() for k, v in m.grads.items()}}
    got.update({f"final {i}": v for i, v in enumerate(state)})
    got.update({f"d state0 {i}": v for i, v in enumerate(dstate)})
    for k in ref:
        assert_close(k, got[k], ref[k], 1e-12)


def test_without_a_tape_nothing_is_kept_and_the_state_is_new():
    m = rnn.LSTM(3, 4, num_layers=2, seed=0)
    cell = rnn.StackedCell(m)
    state = cell.initial_state(2)
    assert [s.shape for s in state] == [(2, 2, 4), (2, 2, 4)] and not any(s.any() for s in state)
    out, new = cell.step(np.ones((2, 3)), state)
    assert out.shape == (2, 4) and not any(s.any() for s in state)  # the input state untouched
    np.testing.assert_array_equal(out, new[0][-1])
    tape = cell.tape()
    with pytest.raises(RuntimeError, match="no recorded step"):
        cell.step_backward(out, new, tape)


def test_bad_shapes_and_layers_are_refused():
    with pytest.raises(ValueError, match="unidirectional"):
        rnn.StackedCell(rnn.GRU(3, 4, bidirectional=True))
    with pytest.raises(ValueError, match="dropout"):
        rnn.StackedCell(rnn.GRU(3, 4, num_layers=2, dropout=0.5))
    cell = rnn.StackedCell(rnn.GRU(3, 4, num_layers=2))
    with pytest.raises(ValueError, match=r"x must have shape \(N, 3\)"):
        cell.step(np.ones((2, 5)), cell.initial_state(2))
    with pytest.raises(ValueError, match=r"shape \(2, 2, 4\)"):
        cell.step(np.ones((2, 3)), [np.zeros((1, 2, 4))])
