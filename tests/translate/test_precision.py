"""`--precision int8|bf16` of `translate run/eval` and `forecast predict` (issue 32): the int8
and bf16 copies decode what the float model decodes (close log-probabilities), leave the float
model alone, and run only where the probe measured them faster; otherwise one line and float32."""

import io

import numpy as np
import pytest

from rnnlab.cli import main
from rnnlab.forecast import precision as FP
from rnnlab.nn import GRU, LSTM
from rnnlab.nn.quantize import QuantizedRNN
from rnnlab.translate import precision as TP
from rnnlab.translate.ensemble import EnsembleModel
from rnnlab.translate.model import Seq2Seq


@pytest.mark.parametrize("dtype", ["int8", "bf16"])
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_the_reduced_copy_decodes_like_the_float_model(cell, dtype):
    model = Seq2Seq(40, 30, 16, 32, num_layers=2, cell=cell, bidirectional=True, seed=1).eval()
    before = {k: v.copy() for k, v in model.state_dict().items()}
    q = TP.quantized_model(model, dtype)
    assert isinstance(q.encoder, QuantizedRNN) and isinstance(model.encoder, (GRU, LSTM))
    assert q.encoder.weight_dtype == q.decoder.weight_dtype == dtype
    src = np.random.default_rng(0).integers(4, 40, (6, 9))
    lengths = np.array([9, 4, 7, 1, 9, 3])
    s_f, s_q = model.start(src, lengths), q.start(src, lengths)
    tokens = np.full(6, 1)
    for _ in range(4):
        lp_f, s_f, _ = model.step(tokens, s_f)
        lp_q, s_q, _ = q.step(tokens, s_q)
        assert np.abs(lp_q - lp_f).max() < 0.05  # log p of 30 words: int8/bf16 move it by a few 1e-3
        tokens = lp_f.argmax(1)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    ens = TP.quantized_model(EnsembleModel([model, model]), dtype)
    assert all(isinstance(m.encoder, QuantizedRNN) for m in ens.models)


class _Tr:
    def __init__(self):
        self.model_ = Seq2Seq(20, 20, 8, 16, seed=0).eval()
        self.src_vocab_ = range(20)


@pytest.mark.parametrize("dtype", ["int8", "bf16"])
def test_a_reduced_precision_is_refused_in_one_line_where_measured_slower(monkeypatch, dtype):
    tr, out = _Tr(), io.StringIO()
    float_model = tr.model_
    monkeypatch.setattr(TP, "measure", lambda m, v, d: ({"float32": 0.010, d: 0.012}, None))
    assert TP.choose(tr, dtype, out) == "float32" and tr.model_ is float_model
    line = out.getvalue()
    assert (
        line.count("\n") == 1 and f"{dtype} decodes slower than float32" in line and "running float32" in line
    )
    monkeypatch.setattr(TP, "measure", lambda m, v, d: ({"float32": 0.012, d: 0.010}, "q"))
    assert TP.choose(tr, dtype, out) == dtype and tr.model_ == "q"
    assert TP.choose(tr, "float32", out) == "float32"
    with pytest.raises(ValueError, match="precision must be one of"):
        TP.choose(tr, "fp16", out)


@pytest.mark.parametrize("dtype", ["int8", "bf16"])
def test_the_real_probe_returns_both_times_and_a_reduced_copy(dtype):
    tr = _Tr()
    times, q = TP.measure(tr.model_, 20, dtype)
    assert set(times) == {"float32", dtype} and all(t > 0 for t in times.values())
    assert isinstance(q.encoder, QuantizedRNN) and q.encoder.weight_dtype == dtype


def test_translate_eval_and_run_take_precision(tmp_path, capsys):
    corpus = tmp_path / "toy.tsv"
    rng = np.random.default_rng(0)
    words = "le chat chien voit mange petit".split()
    lines = [
        " ".join(rng.choice(words, 3)) + f" {i % 5} .\t" + " ".join(rng.choice(words, 3)) for i in range(300)
    ]
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "m"
    tiny = ["--hidden", "16", "--emb", "8", "--vocab", "word", "--min-freq", "1", "--epochs", "1", "--quiet"]
    assert main(["translate", "train", "--out", str(out), "--pairs", str(corpus), *tiny]) == 0
    capsys.readouterr()
    argv = ["--model", str(out), "--precision", "int8"]
    assert main(["translate", "eval", *argv, "--pairs", str(corpus), "--samples", "0"]) == 0
    assert "BLEU" in capsys.readouterr().out
    assert main(["translate", "run", *argv, "le chat voit"]) == 0
    assert capsys.readouterr().out.strip()
    assert main(["translate", "run", "--model", str(out), "--precision", "bf16", "le chat voit"]) == 0
    assert capsys.readouterr().out.strip()
    with pytest.raises(SystemExit) as e:
        main(["translate", "run", "--model", str(out), "--precision", "fp16", "x"])
    assert e.value.code == 2 and "invalid choice: 'fp16'" in capsys.readouterr().err


def test_forecast_precision_swaps_the_recurrent_layers_only_when_faster(monkeypatch):
    from rnnlab.forecast.estimator.train import Net

    class F:
        window = 5
        nets_ = [Net("lstm", 8, 1, 2, seed=0), Net("gru", 8, 2, 2, seed=1)]

    f, out = F(), io.StringIO()
    floats = [n.rnn for n in f.nets_]
    times, quantized = FP.measure(f)
    assert set(times) == {"float32", "int8"} and len(quantized) == 2
    times, bf16 = FP.measure(f, "bf16")
    assert set(times) == {"float32", "bf16"} and [q.weight_dtype for q in bf16] == ["bf16", "bf16"]
    monkeypatch.setattr(FP, "measure", lambda m, d: ({"float32": 1.0, d: 2.0}, quantized))
    assert FP.choose(f, "int8", out) == "float32" and [n.rnn for n in f.nets_] == floats
    assert "int8 runs slower than float32" in out.getvalue()
    monkeypatch.setattr(FP, "measure", lambda m, d: ({"float32": 2.0, d: 1.0}, quantized))
    assert FP.choose(f, "int8", out) == "int8" and all(isinstance(n.rnn, QuantizedRNN) for n in f.nets_)
    x = np.zeros((5, 3, 1), np.float32)
    assert f.nets_[0](x).shape == (3, 2)
