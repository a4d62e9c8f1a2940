"""rnnlab/translate/ensemble.py: checkpoint averaging and ensemble decoding."""

import numpy as np
import pytest
from conftest import run_cli

from rnnlab.translate import Translator
from rnnlab.translate.ensemble import average, ensemble

WORDS = "le chat chien voit mange petit grand".split()
TEST = ["le chat voit", "petit chien mange le grand chat", "chien voit"]


def pairs(n=200, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        s = list(rng.choice(WORDS, rng.integers(2, 5)))
        out.append((" ".join(s), " ".join(s[::-1])))
    return out


@pytest.fixture(scope="module")
def two():
    kw = dict(hidden_size=16, embedding_size=8, epochs=3, lr=3e-3, min_freq=1)
    return [Translator(seed=s, **kw).fit(pairs()) for s in (0, 1)]


def test_an_ensemble_averages_the_members_log_probabilities(two):
    ens = ensemble(two)
    src, lengths = np.array([[4, 5, 6], [7, 8, 0]]), np.array([3, 2])
    states = ens.model_.start(src, lengths)
    logp, new, _ = ens.model_.step(np.array([2, 2]), states)
    each = [t.model_.step(np.array([2, 2]), t.model_.start(src, lengths))[0] for t in two]
    np.testing.assert_allclose(logp, (each[0] + each[1]) / 2, rtol=1e-6)
    assert len(new) == 2
    for beam in (1, 3):
        out = ens.translate(TEST, beam_size=beam)
        assert len(out) == len(TEST) and all(isinstance(o, str) for o in out)
    # an ensemble of one model, or of a model with itself, is that model
    assert ensemble([two[0]]).translate(TEST) == two[0].translate(TEST)
    assert ensemble([two[0], two[0]]).translate(TEST, beam_size=3) == two[0].translate(TEST, beam_size=3)
    with pytest.raises(TypeError, match="not saved"):
        ens.model_.state_dict()


def test_averaging_takes_the_mean_of_every_parameter(two):
    avg = average(two)
    a, b, m = (t.model_.state_dict() for t in (*two, avg))
    for k in m:
        np.testing.assert_allclose(m[k], (a[k].astype(np.float64) + b[k]) / 2, rtol=1e-6)
    assert average([two[0], two[0]]).translate(TEST) == two[0].translate(TEST)
    assert two[0].model_.state_dict()["out.weight"].tolist() == a["out.weight"].tolist()  # members untouched


def test_members_must_share_vocabularies_and_shapes(two):
    other = Translator(hidden_size=16, embedding_size=8, epochs=1, min_freq=1).fit(
        [("un oiseau", "oiseau un")] * 20
    )
    with pytest.raises(ValueError, match="vocabularies"):
        ensemble([two[0], other])
    wider = Translator(hidden_size=24, embedding_size=8, epochs=1, lr=3e-3, min_freq=1).fit(pairs())
    with pytest.raises(ValueError, match="architecture"):
        average([two[0], wider])
    assert len(ensemble([two[0], wider]).translate(TEST)) == len(TEST)  # decoding needs no same shapes


def test_the_command_line_ensembles_and_averages(two, tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    two[0].save(a)
    two[1].save(b)
    code, out, err = run_cli(["translate", "run", "--model", str(a), "--model", str(b), *TEST], capsys)
    assert code == 0, err
    assert out.splitlines() == ensemble(two).translate(TEST)
    code, out, err = run_cli(["translate", "average", str(a), str(b), "--out", str(tmp_path / "avg")], capsys)
    assert code == 0, err
    avg = Translator.load(tmp_path / "avg")
    assert avg.translate(TEST) == average(two).translate(TEST)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    code, _, err = run_cli(["translate", "average", str(a), str(b), "--out", str(tmp_path / "mine")], capsys)
    assert code == 2 and "Traceback" not in err and (tmp_path / "mine" / "notes.txt").read_text() == "keep"
    code, _, err = run_cli(["translate", "average", str(a), "--out", str(tmp_path / "one")], capsys)
    assert code == 2 and "at least two" in err
