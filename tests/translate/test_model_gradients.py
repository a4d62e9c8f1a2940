"""The whole seq2seq loss gradient: vs a torch mirror with identical weights (float64, 1e-9) over
every score function, both cells, 1-2 layers, uni/bidirectional, input feeding, a teacher-forcing
ratio < 1 (the same feed mask on both sides), padded lengths; and by finite differences."""

import numpy as np
import pytest

from rnnlab.gradcheck import gradcheck
from rnnlab.translate.model import Seq2Seq

torch = pytest.importorskip("torch")
from conftest import assert_close  # noqa: E402
from torch_mirror import Mirror, random_batch  # noqa: E402

CASES = [  # score, cell, layers, bidirectional, input_feed, feed_mask
    ("general", "gru", 1, True, False, False),  # the yardstick's architecture (teacher path)
    ("general", "lstm", 2, True, True, False),
    ("dot", "gru", 2, False, False, False),
    ("dot", "lstm", 1, False, False, True),
    ("scaled_dot", "lstm", 1, False, True, False),
    ("scaled_dot", "gru", 1, False, False, True),
    ("cosine", "gru", 1, False, True, True),
    ("additive", "gru", 2, True, True, False),
    ("additive", "lstm", 1, True, False, False),
    ("none", "gru", 2, True, False, False),
    ("none", "lstm", 1, False, False, True),
]


@pytest.mark.parametrize("score,cell,layers,bi,feed,use_mask", CASES)
def test_loss_and_every_gradient_match_torch(score, cell, layers, bi, feed, use_mask):
    rng = np.random.default_rng(11)
    N, S, T, Vs, Vt = 4, 5, 6, 11, 13
    H = 6
    model = Seq2Seq(
        Vs,
        Vt,
        embedding_size=5,
        hidden_size=H,
        num_layers=layers,
        cell=cell,
        bidirectional=bi and score not in ("dot", "scaled_dot", "cosine"),
        attention=score,
        input_feed=feed,
        dtype=np.float64,
        seed=5,
    )
    src, lengths, tgt = random_batch(rng, N, S, T, Vs, Vt)
    feed_mask = rng.random((T, N)) < 0.5 if use_mask else None
    if use_mask:
        feed_mask[0] = False
    mirror = Mirror(model)
    loss = model(src, lengths, tgt, feed_mask=feed_mask)
    model.backward()
    tloss = mirror.loss(src, lengths, tgt, feed_mask)
    tloss.backward()
    assert abs(loss - tloss.item()) <= 1e-12 * abs(tloss.item())
    tgrads = dict(mirror.named_parameters())
    for name, _, g in model.named_parameters():
        tg = tgrads[name].grad
        assert_close(name, g, np.zeros_like(g) if tg is None else tg.numpy(), 1e-9)


@pytest.mark.parametrize(
    "score,cell,feed", [("general", "gru", False), ("additive", "lstm", True), ("none", "gru", False)]
)
def test_finite_differences_tiny_model(score, cell, feed):
    rng = np.random.default_rng(3)
    model = Seq2Seq(
        7,
        8,
        embedding_size=3,
        hidden_size=4,
        num_layers=1,
        cell=cell,
        bidirectional=True,
        attention=score,
        input_feed=feed,
        dtype=np.float64,
        seed=1,
    )
    src, lengths, tgt = random_batch(rng, 2, 3, 4, 7, 8)
    if score != "none":  # sharpen the attention so its gradients are not ~1e-7
        for p in model.attention.params.values():
            p *= 10.0
    params = {name: p for name, p, _ in model.named_parameters()}
    grads = {name: g for name, _, g in model.named_parameters()}
    report = gradcheck(
        lambda: model(src, lengths, tgt),
        lambda: model.backward() or {},
        params,
        {},
        grads,
        eps=1e-4,
        zero_grad=model.zero_grad,
    )
    worst = max(report, key=report.get)
    assert report[worst] < 1e-6, f"{worst}: {report[worst]:.2e}"


@pytest.mark.parametrize("feed", [False, True])
def test_finite_differences_with_dropout_and_sampled_inputs(feed):
    """Dropout masks and the teacher-forcing draws come from model.rng: reset it before every
    forward and the loss is a deterministic function of the parameters again."""
    rng = np.random.default_rng(4)
    model = Seq2Seq(
        7,
        8,
        embedding_size=3,
        hidden_size=4,
        attention="general",
        input_feed=feed,
        dropout=0.3,
        dtype=np.float64,
        seed=2,
    )
    src, lengths, tgt = random_batch(rng, 3, 3, 4, 7, 8)

    def forward():
        model.rng = np.random.default_rng(0)
        return model(src, lengths, tgt, teacher_forcing=0.5)

    params = {name: p for name, p, _ in model.named_parameters()}
    grads = {name: g for name, _, g in model.named_parameters()}
    report = gradcheck(
        forward, lambda: model.backward() or {}, params, {}, grads, eps=1e-5, zero_grad=model.zero_grad
    )
    worst = max(report, key=report.get)
    assert report[worst] < 1e-6, f"{worst}: {report[worst]:.2e}"
    model.eval()  # eval: no dropout, gold inputs
    a, b = model(src, lengths, tgt, teacher_forcing=0.5), model(src, lengths, tgt)
    assert a == b


def test_threaded_loss_equals_single_threaded():
    rng = np.random.default_rng(0)
    src, lengths, tgt = random_batch(rng, 8, 5, 6, 11, 300)
    grads = []
    for threads in (1, 2):
        model = Seq2Seq(11, 300, embedding_size=5, hidden_size=6, attention="general", seed=5)
        model.threads = threads
        loss = model(src, lengths, tgt)
        model.backward()
        grads.append((loss, {n: g.copy() for n, _, g in model.named_parameters()}))
    assert grads[0][0] == pytest.approx(grads[1][0], rel=1e-6)
    for n, g in grads[0][1].items():
        np.testing.assert_allclose(grads[1][1][n], g, rtol=1e-5, atol=1e-8, err_msg=n)
