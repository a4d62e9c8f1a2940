"""Tools for learners: ``gate_trace`` and ``hidden_grad_norms`` against a torch step loop.

The reference runs every layer and direction one step at a time (``torch.nn.LSTMCell`` /
``torch.nn.GRUCell``, or the chapter's GRU written out), recomputes the gates from the same
``x_t`` and ``h_{t-1}`` with the cell equations, and keeps every ``h_t`` with ``retain_grad``
so that ``h_t.grad`` is the *total* gradient reaching h_t (from the output at t and from
step t+1). Variable lengths: past a sequence's end the state is carried and the output is 0;
the reverse direction reads each sequence reversed within its own length.
"""

import numpy as np
import pytest

import rnnlab.nn as rnn

torch = pytest.importorskip("torch")
from conftest import assert_close  # noqa: E402

T, N, I, H = 5, 3, 4, 6
KINDS = ["LSTM", "GRU", "GRU_chapter"]


def make(kind, L, bidir, seed=0):
    kw = dict(num_layers=L, bidirectional=bidir, dtype=np.float64, seed=seed)
    if kind == "LSTM":
        return rnn.LSTM(I, H, **kw)
    return rnn.GRU(I, H, reset_after=kind == "GRU", **kw)


def rev_index(lengths):
    t = torch.arange(T)[:, None]
    Ln = torch.as_tensor(lengths)[None, :]
    return torch.where(t < Ln, Ln - 1 - t, t)  # (T, N) an involution


def take_time(a, idx):
    return a[idx, torch.arange(a.shape[1])[None, :]]


def gates_of(kind, x_t, h, P, sfx):
    """The cell equations, written out: activated gates from x_t and h_{t-1}."""
    U, W, b_ih, b_hh = (P[n + sfx] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
    gi = x_t @ U.T + b_ih
    if kind == "LSTM":
        a = gi + h @ W.T + b_hh
        i, f, g, o = a.split(H, 1)
        return {"i": torch.sigmoid(i), "f": torch.sigmoid(f), "g": torch.tanh(g), "o": torch.sigmoid(o)}
    gh = h @ W.T + b_hh
    r = torch.sigmoid(gi[:, :H] + gh[:, :H])
    z = torch.sigmoid(gi[:, H : 2 * H] + gh[:, H : 2 * H])
    if kind == "GRU":
        n = torch.tanh(gi[:, 2 * H :] + r * gh[:, 2 * H :])
    else:
        n = torch.tanh(gi[:, 2 * H :] + (r * h) @ W[2 * H :].T + b_hh[2 * H :])
    return {"r": r, "z": z, "n": n}


def reference(kind, m, x, h0, c0, lengths):
    """Returns out, finals, traces[(l, d)] (time order), hs[(l, d)] (loop order, retain_grad)."""
    P = {k: torch.tensor(v) for k, v in m.params.items()}
    L, D = m.num_layers, m.num_directions
    mask = (torch.arange(T)[:, None] < torch.as_tensor(lengths)[None, :])[:, :, None]
    rev = rev_index(lengths)
    layer_in, finals, traces, hs = x, [], {}, {}
    for layer in range(L):
        outs = []
        for d in range(D):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            k = layer * D + d
            if kind == "LSTM":
                cell = torch.nn.LSTMCell(layer_in.shape[2], H).double()
            elif kind == "GRU":
                cell = torch.nn.GRUCell(layer_in.shape[2], H).double()
            if kind != "GRU_chapter":
                cell.load_state_dict(
                    {n: P[n + sfx] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
                )
            xin = take_time(layer_in, rev) if d else layer_in
            h, c = h0[k], c0[k]
            ys, trace, hlist = [], {}, []
            for t in range(T):
                gates = gates_of(kind, xin[t], h, P, sfx)
                if kind == "LSTM":
                    h_new, c_new = cell(xin[t], (h, c))
                    gates["c"] = torch.where(mask[t], c_new, c)
                    c = gates["c"]
                elif kind == "GRU":
                    h_new = cell(xin[t], h)
                else:
                    h_new = gates["z"] * h + (1 - gates["z"]) * gates["n"]
                h = torch.where(mask[t], h_new, h)  # carry the state past the end
                h.retain_grad()
                hlist.append(h)
                ys.append(h * mask[t])
                for name, v in gates.items():
                    trace.setdefault(name, []).append(v)
            y = torch.stack(ys)
            trace = {n: torch.stack(v) for n, v in trace.items()}
            if d:
                y = take_time(y, rev)
                trace = {n: take_time(v, rev) for n, v in trace.items()}
            outs.append(y)
            finals.append((h, c))
            traces[(layer, d)], hs[(layer, d)] = trace, hlist
        layer_in = torch.cat(outs, 2)
    return layer_in, finals, traces, hs


def run(kind, L, bidir, lengths, seed=0):
    rng = np.random.default_rng(seed)
    m = make(kind, L, bidir, seed)
    for k, p in m.params.items():  # nonzero, distinct biases
        if k.startswith("bias"):
            p[...] = rng.uniform(-0.5, 0.5, p.shape)
    D = m.num_directions
    x = rng.standard_normal((T, N, I))
    h0, c0 = 0.5 * rng.standard_normal((2, L * D, N, H))
    R, Rh, Rc = rng.standard_normal((T, N, D * H)), *rng.standard_normal((2, L * D, N, H))
    lstm = kind == "LSTM"
    out, st = m(x, (h0, c0) if lstm else h0, lengths=lengths)
    traces = {(l, d): m.gate_trace(l, d) for l in range(L) for d in range(D)}
    m.backward(R, (Rh, Rc) if lstm else Rh)
    norms = {(l, d): m.hidden_grad_norms(l, d) for l in range(L) for d in range(D)}

    tx, th0, tc0 = (torch.tensor(a, requires_grad=True) for a in (x, h0, c0))
    ref_out, finals, ref_traces, hs = reference(kind, m, tx, th0, tc0, lengths)
    loss = (ref_out * torch.tensor(R)).sum()
    loss = loss + sum((f[0] * torch.tensor(Rh[k])).sum() for k, f in enumerate(finals))
    if lstm:
        loss = loss + sum((f[1] * torch.tensor(Rc[k])).sum() for k, f in enumerate(finals))
    loss.backward()
    assert_close("out (reference sanity)", out, ref_out.detach().numpy(), 1e-10)
    rev = rev_index(lengths)
    ref_norms = {}
    for (layer, d), hl in hs.items():
        g = torch.stack([h.grad for h in hl])  # (T, N, H) loop order
        if d:
            g = take_time(g, rev)  # real time order, per sequence
        ref_norms[(layer, d)] = g.pow(2).sum((1, 2)).sqrt().numpy()
    return traces, ref_traces, norms, ref_norms


CASES = {
    "L1-uni-full": (1, False, [T] * N),
    "L2-bi-full": (2, True, [T] * N),
    "L2-uni-lengths": (2, False, [T, 3, 2]),
    "L2-bi-lengths": (2, True, [T, 3, 2]),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("kind", KINDS)
def test_gate_trace(kind, case):
    L, bidir, lengths = CASES[case]
    traces, ref, _, _ = run(kind, L, bidir, np.array(lengths))
    valid = np.arange(T)[:, None] < np.array(lengths)[None, :]  # (T, N) real steps only
    names = {"LSTM": "ifgoc", "GRU": "rzn", "GRU_chapter": "rzn"}[kind]
    for key, tr in traces.items():
        assert set(tr) == set(names), f"{key}: trace has {sorted(tr)}"
        for n in names:
            a, b = tr[n], ref[key][n].detach().numpy()
            assert a.shape == (T, N, H), f"{n} shape {a.shape}"
            assert_close(f"layer {key[0]} dir {key[1]} gate {n}", a[valid], b[valid], 1e-10)


def test_gate_trace_is_a_copy():
    m = make("LSTM", 1, True)
    m(np.ones((T, N, I)))
    for d in (0, 1):
        tr = m.gate_trace(0, d)
        tr["i"][...] = 7.0
        assert not np.any(m.gate_trace(0, d)["i"] == 7.0), f"direction {d}: trace aliases the cache"


@pytest.mark.parametrize("case", ["L1-uni-full", "L2-bi-full", "L2-uni-lengths"])
@pytest.mark.parametrize("kind", KINDS)
def test_hidden_grad_norms(kind, case):
    L, bidir, lengths = CASES[case]
    _, _, norms, ref = run(kind, L, bidir, np.array(lengths))
    for key in ref:
        assert norms[key].shape == (T,)
        assert_close(f"||dL/dh_t|| layer {key[0]} dir {key[1]}", norms[key], ref[key], 1e-10)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_hidden_grad_norms_reverse_direction_with_lengths(kind):
    _, _, norms, ref = run(kind, 2, True, np.array(CASES["L2-bi-lengths"][2]))
    for key in ref:
        assert_close(f"||dL/dh_t|| layer {key[0]} dir {key[1]}", norms[key], ref[key], 1e-10)


def test_rnn_trace_is_the_hidden_state():
    m = rnn.RNN(I, H, bidirectional=True, dtype=np.float64, seed=0)
    x = np.random.default_rng(0).standard_normal((T, N, I))
    out, _ = m(x, lengths=np.array([T, 2, 4]))
    valid = np.arange(T)[:, None] < np.array([T, 2, 4])
    for d in (0, 1):
        assert_close(f"h dir {d}", m.gate_trace(0, d)["h"][valid], out[..., d * H : (d + 1) * H][valid], 0)


def test_vanishing_gradient_picture():
    """The picture the tool exists for: with small recurrent weights the plain RNN's
    ||dL/dh_t|| decays geometrically towards t = 0 when only the last output has a gradient."""
    m = rnn.RNN(3, 8, dtype=np.float64, seed=0)
    m.params["weight_hh_l0"] *= 0.3
    x = np.random.default_rng(0).standard_normal((20, 2, 3))
    out, _ = m(x)
    dout = np.zeros_like(out)
    dout[-1] = 1.0
    m.backward(dout)
    g = m.hidden_grad_norms()
    assert g[-1] > 1e3 * g[0] and np.all(np.diff(g) > 0), g


def test_tools_need_passes_first():
    m = rnn.GRU(I, H)
    with pytest.raises(RuntimeError, match="forward"):
        m.gate_trace()
    m(np.ones((T, N, I), np.float32))
    with pytest.raises(RuntimeError, match="backward"):
        m.hidden_grad_norms()
