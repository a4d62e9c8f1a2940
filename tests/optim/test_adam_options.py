"""How Adam runs (chunks, threads, compiled, one flat buffer, zero_grad in the step) never
changes what it computes: the same bits as the plain per-tensor NumPy update, float32 and
float64, and the same state_dict."""

import numpy as np
import pytest

from rnnlab.nn import Linear
from rnnlab.optim import Adam, AdamW

OPTIONS = [
    dict(chunk=4096),
    dict(chunk=4096, threads=3),
    dict(threads=2, compiled=True),
    dict(compiled=True),
    dict(chunk=1000, threads=4, compiled=False),
]
IDS = ["chunks", "chunks-threads", "compiled-threads", "compiled", "ragged-threads"]


@pytest.mark.parametrize("opts", OPTIONS, ids=IDS)
@pytest.mark.parametrize(
    "cls,wd", [(Adam, 0.0), (Adam, 0.01), (AdamW, 0.1)], ids=["adam", "adam-l2", "adamw"]
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("flat", [False, True], ids=["tensors", "flat"])
def test_options_equal_the_plain_update(opts, cls, wd, dtype, flat):
    if opts.get("compiled"):
        pytest.importorskip("numba")
    rng = np.random.default_rng(0)
    a, b = Linear(300, 250, dtype=dtype, seed=1), Linear(300, 250, dtype=dtype, seed=1)
    if flat:
        b.flatten_parameters()
    oa = cls([a], lr=1e-2, weight_decay=wd, compiled=False)
    ob = cls([b], lr=1e-2, weight_decay=wd, **opts)
    for _ in range(4):
        a.zero_grad()
        grads = {k: rng.standard_normal(v.shape).astype(dtype) for k, v in a.grads.items()}
        for m in (a, b):
            for k, g in grads.items():
                m.grads[k] += g
        oa.step()
        ob.step(zero_grad=True)
        assert all(not g.any() for g in b.grads.values())
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k], err_msg=k)
    sa, sb = oa.state_dict(), ob.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        np.testing.assert_array_equal(sa[k], sb[k], err_msg=k)


def test_threads_do_not_change_the_result():
    rng = np.random.default_rng(1)
    mods = [Linear(200, 300, seed=2) for _ in range(3)]
    opts = [Adam([m], threads=t, chunk=4096) for m, t in zip(mods, (1, 2, 4))]
    for _ in range(3):
        g = rng.standard_normal((300, 200)).astype(np.float32)
        for m, o in zip(mods, opts):
            m.grads["weight"] += g
            o.step(zero_grad=True)
    for m in mods[1:]:
        np.testing.assert_array_equal(m.params["weight"], mods[0].params["weight"])


def test_state_dict_moves_between_flat_and_per_tensor():
    """A checkpoint of a flat-buffer Adam resumes a per-tensor one and back (same keys)."""
    a, b = Linear(5, 4, seed=0), Linear(5, 4, seed=0)
    a.flatten_parameters()
    oa, ob = Adam([a], lr=0.1), Adam([b], lr=0.1)
    for m, o in ((a, oa), (b, ob)):
        for g in m.grads.values():
            g += 1.0
        o.step()
    oc = Adam([b], lr=0.1)
    oc.load_state_dict(oa.state_dict())
    for k, v in ob.state_dict().items():
        np.testing.assert_array_equal(oc.state_dict()[k], v)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="threads and chunk"):
        Adam([Linear(2, 2)], threads=0)
    with pytest.raises(ValueError, match="learning rate"):
        Adam([Linear(2, 2)], lr=float("nan"))
