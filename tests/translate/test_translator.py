"""The Translator estimator: fit/translate/evaluate, save/load, checkpoints and resume, LR decay
and early stopping, time budget, and bad input (empty, unknown, over-long, corrupt models)."""

import json

import numpy as np
import pytest

from rnnlab.errors import NotFittedError, UserError
from rnnlab.io import read_tensors
from rnnlab.translate import Translator

WORDS = "le chat chien voit mange petit grand un la souris".split()


def toy_pairs(n, seed=0):
    """'x y z' -> 'Z Y X' (reversed, upper-cased with lower=False)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        s = list(rng.choice(WORDS, rng.integers(2, 6)))
        out.append((" ".join(s) + " .", " ".join(w.upper() for w in s[::-1]) + " ."))
    return out


def small(**kw):
    args = dict(hidden_size=16, embedding_size=8, epochs=2, batch_size=16, min_freq=1, lower=False, seed=0)
    args.update(kw)
    return Translator(**args)


@pytest.fixture(scope="module")
def fitted():
    return small(epochs=6, hidden_size=32, lr=3e-3, bidirectional=True).fit(
        toy_pairs(400), valid=toy_pairs(40, seed=1)
    )


def test_estimator_rules():
    tr = small()
    assert tr.get_params()["hidden_size"] == 16 and not hasattr(tr, "model_")
    with pytest.raises(NotFittedError, match="not fitted"):
        tr.translate(["le chat ."])
    assert tr.fit(toy_pairs(50)) is tr
    assert tr.model_ is not None and tr.src_vocab_ is not None and len(tr.history_) == 2
    with pytest.raises(TypeError, match="list of strings"):
        tr.translate("le chat .")


def test_translate_evaluate_and_history(fitted):
    out = fitted.translate(["le chat voit la souris ."], beam_size=3)
    assert isinstance(out[0], str) and out[0]
    res = fitted.evaluate(toy_pairs(30, seed=2), n_samples=2)
    assert {"bleu", "chrf", "n_sentences", "samples"} <= res.keys() and len(res["samples"]) == 2
    assert all("valid_bleu" in h and h["tokens_per_s"] > 0 for h in fitted.history_)


def test_save_load_roundtrip(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    back = Translator.load(tmp_path / "m")
    texts = ["le petit chat mange .", "un chien voit le chat ."]
    assert back.translate(texts) == fitted.translate(texts)
    assert back.translate(texts, beam_size=4) == fitted.translate(texts, beam_size=4)
    assert back.get_params() == fitted.get_params() and back.history_ == fitted.history_
    meta = json.loads((tmp_path / "m" / "translator.json").read_text())
    assert meta["src_vocab"][:4] == ["<pad>", "<unk>", "<sos>", "<eos>"]


def test_bad_model_directories(fitted, tmp_path):
    with pytest.raises(UserError, match="not found"):
        Translator.load(tmp_path / "nope")
    d = tmp_path / "m"
    fitted.save(d)
    (d / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(UserError, match="corrupt model directory"):
        Translator.load(d)
    fitted.save(d)
    (d / "translator.json").write_text("{not json")
    with pytest.raises(UserError, match="corrupt model directory"):
        Translator.load(d)
    fitted.save(d)
    meta = json.loads((d / "translator.json").read_text())
    meta["params"]["hidden_size"] = 17  # weights no longer fit
    (d / "translator.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match="corrupt model directory"):
        Translator.load(d)
    (d / "model.safetensors").unlink()
    with pytest.raises(UserError, match="model.safetensors is missing"):
        Translator.load(d)


def test_empty_unknown_and_overlong_input(fitted):
    with pytest.warns(UserWarning, match="empty or whitespace-only"):
        out = fitted.translate(["", "   ", "le chat ."])
    assert out[:2] == ["", ""] and out[2]
    out = fitted.translate(["xylophone zebra quux ."])  # unknown words -> <unk>, no crash
    assert isinstance(out[0], str)
    with pytest.warns(UserWarning, match="truncated to 20"):
        out = fitted.translate([" ".join(["le"] * 50)])
    assert len(out[0].split()) <= 25


def test_resume_gives_the_same_model_as_an_uninterrupted_run(tmp_path):
    train, valid = toy_pairs(120), toy_pairs(20, seed=1)
    full = small(epochs=3, dropout=0.2, teacher_forcing=0.7).fit(train, valid, checkpoint_dir=tmp_path / "a")
    small(epochs=1, dropout=0.2, teacher_forcing=0.7).fit(train, valid, checkpoint_dir=tmp_path / "b")
    state = json.loads((tmp_path / "b" / "state.json").read_text())
    assert state["epoch"] == 1
    resumed = small(epochs=3, dropout=0.2, teacher_forcing=0.7).fit(
        train, valid, checkpoint_dir=tmp_path / "b", resume=True
    )
    assert [h["epoch"] for h in resumed.history_] == [1, 2, 3]
    for a, b in zip(resumed.history_, full.history_):
        assert (a["loss"], a["valid_bleu"], a["lr"]) == (b["loss"], b["valid_bleu"], b["lr"])
    a, b = (
        read_tensors(tmp_path / "a" / "model.safetensors"),
        read_tensors(tmp_path / "b" / "model.safetensors"),
    )
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    with pytest.raises(UserError, match="architecture differs from the checkpoint.s in --hidden$"):
        small(epochs=4, hidden_size=20).fit(train, valid, checkpoint_dir=tmp_path / "b", resume=True)
    with pytest.raises(UserError, match="vocabularies differ"):
        small(epochs=4).fit(
            train + [("hippopotame .", "HIPPOPOTAME .")], valid, checkpoint_dir=tmp_path / "b", resume=True
        )
    with pytest.raises(UserError, match="no checkpoint"):
        small().fit(train, valid, checkpoint_dir=tmp_path / "empty", resume=True)


def test_lr_decay_on_plateau_and_early_stopping():
    """Targets unrelated to the sources: valid BLEU stays flat, so every epoch after the first
    halves the learning rate and training stops after ``early_stopping`` such epochs."""
    rng = np.random.default_rng(0)
    noise = [(" ".join(rng.choice(WORDS, 3)), " ".join(rng.choice(["A", "B", "C"], 3))) for _ in range(60)]
    valid = [("le chat .", "ZZZ QQQ"), ("un chien .", "YYY WWW")]  # unreachable words: BLEU 0
    tr = small(epochs=10, lr=1e-3, lr_decay=0.5, early_stopping=2).fit(noise, valid)
    lrs = [h["lr"] for h in tr.history_]
    assert len(tr.history_) == 3 and tr.stop_reason_.startswith("early stopping")
    assert lrs == [1e-3, 1e-3, 5e-4]  # lr in force during each epoch


def test_time_budget_stops_training():
    tr = small(epochs=50, time_budget=0.5 / 60).fit(toy_pairs(2000))
    assert tr.stop_reason_ == "time budget" and tr.n_epochs_ < 50
    assert tr.train_seconds_ < 5


def test_round_one_names_still_work_with_a_warning(fitted, tmp_path):
    """hidden / layers / emb (round 1) -> hidden_size / num_layers / embedding_size, warned;
    a model saved with the old names loads."""
    with pytest.warns(DeprecationWarning, match="hidden= is now hidden_size="):
        tr = Translator(hidden=24, layers=2, emb=12)
    assert (tr.hidden_size, tr.num_layers, tr.embedding_size) == (24, 2, 12)
    with pytest.raises(TypeError, match="unexpected keyword"):
        Translator(hiden=3)
    assert tr.set_params(hidden_size=8) is tr and tr.hidden_size == 8
    with pytest.raises(ValueError, match="invalid parameters"):
        tr.set_params(nonsense=1)
    fitted.save(tmp_path / "old")
    meta = json.loads((tmp_path / "old" / "translator.json").read_text())
    p = meta["params"]
    p["hidden"], p["layers"], p["emb"] = p.pop("hidden_size"), p.pop("num_layers"), p.pop("embedding_size")
    (tmp_path / "old" / "translator.json").write_text(json.dumps(meta))
    back = Translator.load(tmp_path / "old")
    assert back.translate(["le chat ."]) == fitted.translate(["le chat ."])
    from rnnlab.translate.model import Seq2Seq

    with pytest.warns(DeprecationWarning, match="embedding_size"):
        assert Seq2Seq(5, 6, emb_size=7, hidden_size=4).embedding_size == 7


def test_average_last_epochs(tmp_path):
    """average_last=2: the final weights are the mean of the last two epochs' (without valid
    pairs), kept only when they validate better (with them); the epochs' weights live in the
    checkpoint, so a resumed run averages the same two."""
    train, valid = toy_pairs(120), toy_pairs(20, seed=1)
    tr = small(epochs=3, average_last=2).fit(train, checkpoint_dir=tmp_path / "a")
    recent = read_tensors(tmp_path / "a" / "recent.safetensors")
    assert sorted({k.split("/")[0] for k in recent}) == ["2", "3"]
    for name, v in tr.model_.state_dict().items():
        mean = (recent[f"2/{name}"].astype(np.float64) + recent[f"3/{name}"]) / 2
        np.testing.assert_allclose(v, mean, rtol=1e-6, err_msg=name)
    assert tr.averaged_ == {"epochs": [2, 3], "kept": True}
    tr.save(tmp_path / "m")
    assert Translator.load(tmp_path / "m").averaged_ == {"epochs": [2, 3], "kept": True}

    full = small(epochs=3, average_last=2).fit(train, valid, checkpoint_dir=tmp_path / "b")
    info = full.averaged_
    assert info["epochs"] == [2, 3] and info["kept"] == (info["valid_score"] > info["best_epoch_score"])
    assert full.best_bleu_ == max(info["valid_score"], info["best_epoch_score"])
    small(epochs=2, average_last=2).fit(train, valid, checkpoint_dir=tmp_path / "c")
    resumed = small(epochs=3, average_last=2).fit(train, valid, checkpoint_dir=tmp_path / "c", resume=True)
    assert resumed.averaged_ == info
    for k, v in full.model_.state_dict().items():
        np.testing.assert_array_equal(v, resumed.model_.state_dict()[k], err_msg=k)
