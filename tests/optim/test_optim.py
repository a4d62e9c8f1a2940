"""Optimisers step for step against torch.optim, and clip_grad_norm against torch's.

The same parameters (an LSTM and a Linear head, float64) are updated for 20 steps with a
fresh random gradient each step, written into ``module.grads`` for ours and ``p.grad`` for
torch; every parameter is compared after every step.
"""

import numpy as np
import pytest

import rnnlab.nn as rnn
import rnnlab.optim as optim

torch = pytest.importorskip("torch")
from conftest import assert_close  # noqa: E402

STEPS, TOL = 20, 1e-9


def model_pair(seed=0):
    mods = [
        rnn.LSTM(3, 4, num_layers=2, dtype=np.float64, seed=seed),
        rnn.Linear(4, 2, dtype=np.float64, seed=seed),
    ]
    named = [(f"m{i}.{n}", p, g) for i, m in enumerate(mods) for n, p, g in m.named_parameters()]
    tparams = {n: torch.nn.Parameter(torch.tensor(p)) for n, p, _ in named}
    return mods, named, tparams


CASES = {
    "SGD": (optim.SGD, torch.optim.SGD, dict(lr=0.1)),
    "SGD-momentum": (optim.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9)),
    "SGD-dampening": (optim.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, dampening=0.3)),
    "SGD-nesterov": (optim.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.8, nesterov=True)),
    "SGD-weight_decay": (optim.SGD, torch.optim.SGD, dict(lr=0.05, weight_decay=0.1)),
    "SGD-all": (optim.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.05)),
    "Adam": (optim.Adam, torch.optim.Adam, dict(lr=0.01)),
    "Adam-betas-eps": (optim.Adam, torch.optim.Adam, dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6)),
    "Adam-weight_decay": (optim.Adam, torch.optim.Adam, dict(lr=0.01, weight_decay=0.1)),
    "AdamW": (optim.AdamW, torch.optim.AdamW, dict(lr=0.01)),  # default weight_decay 1e-2 on both
    "AdamW-weight_decay": (optim.AdamW, torch.optim.AdamW, dict(lr=0.01, weight_decay=0.3)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_optimizer_matches_torch(case):
    ours_cls, torch_cls, kw = CASES[case]
    mods, named, tparams = model_pair()
    opt = ours_cls(mods, **kw)
    topt = torch_cls(list(tparams.values()), **kw)
    rng = np.random.default_rng(1)
    for step in range(STEPS):
        if step == 10:  # lr is mutable, as in torch
            opt.lr *= 0.5
            topt.param_groups[0]["lr"] *= 0.5
        opt.zero_grad()
        topt.zero_grad()
        for n, p, g in named:
            grad = rng.standard_normal(p.shape) * (1 + step % 3)
            assert not g.any(), f"{n}: zero_grad left a gradient"
            g += grad  # backward accumulates into grads
            tparams[n].grad = torch.tensor(grad)
        opt.step()
        topt.step()
        for n, p, _ in named:
            assert_close(f"step {step + 1} {n}", p, tparams[n].detach().numpy(), TOL)


def test_params_updated_in_place():
    mods, named, _ = model_pair()
    before = {n: p for n, p, _ in named}
    opt = optim.Adam(mods, lr=0.1)
    for _, _, g in named:
        g += 1.0
    opt.step()
    for (n, p, _), m_arr in zip(named, before.values()):
        assert p is m_arr, f"{n} replaced"
    assert mods[0].params["weight_ih_l0"] is before["m0.weight_ih_l0"]


def test_adam_state_dict_resumes_exactly():
    """Checkpoint after 7 steps, restore into a fresh optimizer: the next steps are identical."""
    mods_a, named_a, _ = model_pair()
    mods_b, named_b, _ = model_pair()
    a, b = optim.Adam(mods_a, lr=0.03), None
    rng = np.random.default_rng(2)
    grads = [[rng.standard_normal(p.shape) for _, p, _ in named_a] for _ in range(12)]
    for step, gs in enumerate(grads):
        if step == 7:
            for (_, pa, _), (_, pb, _) in zip(named_a, named_b):
                pb[...] = pa
            b = optim.Adam(mods_b, lr=1.0)
            b.load_state_dict({k: np.array(v) for k, v in a.state_dict().items()})
        for opt, named in ((a, named_a), (b, named_b)):
            if opt is None:
                continue
            opt.zero_grad()
            for (_, _, g), gr in zip(named, gs):
                g += gr
            opt.step()
    for (n, pa, _), (_, pb, _) in zip(named_a, named_b):
        np.testing.assert_array_equal(pa, pb, err_msg=n)


def test_optimizer_errors():
    m = rnn.Linear(2, 2)
    with pytest.raises(ValueError, match="learning rate"):
        optim.SGD([m], lr=0.0)
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD([m], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="no parameters"):
        optim.Adam([rnn.Dropout(0.1)], lr=0.1)


def test_shared_module_counted_once():
    m = rnn.Linear(2, 2, dtype=np.float64, seed=0)
    opt = optim.SGD([m, m], lr=1.0)
    w = m.params["weight"].copy()
    m.grads["weight"][...] = 1.0
    opt.step()
    np.testing.assert_array_equal(m.params["weight"], w - 1.0)


# ----------------------------------------------------------------------------- clipping


@pytest.mark.parametrize("max_norm", [0.5, 3.0, 1e3], ids=["clip", "clip-mild", "no-clip"])
def test_clip_grad_norm_matches_torch(max_norm):
    mods, named, tparams = model_pair()
    rng = np.random.default_rng(3)
    for n, p, g in named:
        grad = 0.3 * rng.standard_normal(p.shape)
        g[...] = grad
        tparams[n].grad = torch.tensor(grad)
    before = {n: g.copy() for n, _, g in named}
    norm = optim.clip_grad_norm(mods, max_norm)
    tnorm = torch.nn.utils.clip_grad_norm_(list(tparams.values()), max_norm)
    assert_close("total norm", norm, tnorm.item(), 1e-12)
    expect = np.sqrt(sum((b**2).sum() for b in before.values()))
    assert_close("total norm vs numpy", norm, expect, 1e-12)
    for n, _, g in named:
        assert_close(f"clipped grad {n}", g, tparams[n].grad.numpy(), 1e-12)
    if max_norm > expect:
        for n, _, g in named:
            np.testing.assert_array_equal(g, before[n], err_msg=f"{n} changed though under max_norm")
    else:
        clipped = np.sqrt(sum((g**2).sum() for _, _, g in named))
        assert abs(clipped - max_norm) < 1e-5 * max_norm, clipped
