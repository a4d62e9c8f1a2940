"""``Combination`` (rnnlab/forecast/estimator/combination.py): forecasters of several targets averaged,
what ``--target auto`` returns when candidates score within ``BAND`` of the best on the
validation slice; its forecasts, quantiles, storage, ONNX graph and command line."""

import importlib.util
import json
import os

import numpy as np
import pytest
from forecast_helpers import write_csv
from test_forecast_cli import FAST, run
from test_forecast_deseason import seasonal

from rnnlab.errors import UserError
from rnnlab.forecast import Combination, Forecaster, load_model
from rnnlab.forecast.estimator import choice as Ch
from rnnlab.forecast.estimator import combination as Cm
from rnnlab.forecast.evaluation import pipeline as P

SMALL = dict(window=12, season=12, hidden_size=4, epochs=2, ensemble=2, min_updates=0)


@pytest.fixture(scope="module")
def members():
    y = seasonal(150)
    return y, [Forecaster(target=t, seed=s, **SMALL).fit(y[:130]) for t, s in (("deseason", 0), ("diff", 5))]


def test_forecasts_and_quantiles_are_the_members_means(members):
    y, ms = members
    c = Combination(ms)
    assert c.target == "deseason+diff" and len(c.nets_) == 4 and c.shrinks_ == ms[0].shrinks_ + ms[1].shrinks_
    assert c.first_origin == max(m.first_origin for m in ms) and c.levels_read == ms[0].levels_read
    o = np.arange(c.first_origin, 140)
    want = (ms[0].forecast_from(y, o, 3) + ms[1].forecast_from(y, o, 3)) / 2
    np.testing.assert_array_equal(c.forecast_from(y, o, 3), want)
    levels = [0.05, 0.5, 0.9]
    q = c.quantiles_from(y, o, levels, 3)
    np.testing.assert_allclose(
        q, (ms[0].quantiles_from(y, o, levels, 3) + ms[1].quantiles_from(y, o, levels, 3)) / 2
    )
    assert np.all(np.diff(q, axis=2) >= 0)  # an average of quantile functions does not cross
    np.testing.assert_allclose(c.predict(y, 2), (ms[0].predict(y, 2) + ms[1].predict(y, 2)) / 2, rtol=1e-15)
    np.testing.assert_array_equal(c.predict_quantiles(y, levels, 2), c.quantiles_from(y, [149], levels, 2)[0])
    with pytest.raises(UserError, match="origins must lie in"):
        c.forecast_from(y, [c.first_origin - 1], 1)  # diff could, deseason cannot
    with pytest.raises(UserError, match="at least"):
        c.predict(y[: c.first_origin], 1)


def test_members_must_differ_in_their_target_only(members):
    y, ms = members
    other = Forecaster(target="diff", **{**SMALL, "window": 13}).fit(y[:130])
    with pytest.raises(UserError, match="share window"):
        Combination([ms[0], other])
    with pytest.raises(UserError, match="one or more fitted"):
        Combination([])


def test_save_and_load_round_trip_exactly(members, tmp_path):
    y, ms = members
    c = Combination(ms, {"deseason": 0.5, "diff": 0.52})
    c.series_info_ = {
        "column": "v",
        "date_column": "d",
        "values": [1.0, 2.0],
        "dates": ["2000-01-01", "2000-02-01"],
    }
    path = tmp_path / "model"
    c.save(path)
    assert sorted(os.listdir(path)) == ["config.json", "member0", "member1"]
    back = load_model(path)
    assert isinstance(back, Combination) and back.target_scores_ == c.target_scores_
    assert back.series_info_["values"] == [1.0, 2.0]
    o = np.arange(c.first_origin, 150)
    np.testing.assert_array_equal(back.forecast_from(y, o, 2), c.forecast_from(y, o, 2))
    np.testing.assert_array_equal(
        back.quantiles_from(y, o, [0.1, 0.9], 2), c.quantiles_from(y, o, [0.1, 0.9], 2)
    )
    assert isinstance(load_model(ms[0].save(tmp_path / "one")), Forecaster)
    with pytest.raises(UserError, match="load_model"):
        Forecaster.load(path)
    c.save(path, overwrite=True)  # a combination's directory is a model directory
    with pytest.raises(UserError, match="holds other files"):
        c.save(tmp_path)  # holds other things


@pytest.mark.parametrize(
    "edit, why",
    [
        (lambda cfg: cfg.update(targets=["deseason"] * 20), "1 to 16"),
        (lambda cfg: cfg.update(targets=["diff", "deseason"]), "targets differ"),
        (lambda cfg: cfg.update(format_version=2), "version"),
        (lambda cfg: cfg.update(target_scores={"diff": "x"}), "target_scores"),
        (
            lambda cfg: cfg.update(
                series={"values": [1.0], "dates": ["x"], "column": "v", "date_column": "d"}
            ),
            "ISO",
        ),
    ],
)
def test_a_tampered_combination_is_refused_in_one_line(members, tmp_path, edit, why):
    _, ms = members
    path = tmp_path / "model"
    Combination(ms).save(path)
    cfg = json.loads((path / "config.json").read_text())
    edit(cfg)
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UserError, match=why):
        load_model(path)


def test_members_keep_the_best_and_those_within_the_band():
    assert Cm.members({"diff": 0.5, "deseason": 0.3, "deseason_mean": 0.32}) == ["deseason", "deseason_mean"]
    assert Cm.members({"diff": 0.5, "deseason": 0.3, "deseason_mean": 0.3 * Cm.BAND * 1.01}) == ["deseason"]
    assert Cm.members({"diff": 1.0}) == ["diff"]


def errors_of(rms: dict, n: int, seed=0, common=None) -> dict:
    """Independent normal errors of exactly the given RMS, one series, origins 0 .. n - 1."""
    rng = np.random.default_rng(seed)
    out = {}
    for t, r in rms.items():
        e = rng.standard_normal(n) if common is None else common + 0.05 * rng.standard_normal(n)
        out[t] = [dict(enumerate(r * e / np.sqrt(np.mean(e * e))))]
    return out


def test_members_drop_a_candidate_significantly_worse_on_many_windows():
    """The band is blind to the number of windows: 8% worse on 300 windows of nearly the same
    errors is no noise (a one-sided Diebold-Mariano test at LEVEL), on 10 independent ones it is."""
    rms = {"diff": 1.0, "deseason": 1.08}
    base = np.random.default_rng(1).standard_normal(300)
    many = errors_of(rms, 300, common=base)
    assert Cm.members(rms, many) == ["diff"]
    assert Cm.members(rms) == ["diff", "deseason"]  # the band alone keeps it
    assert Cm.members(rms, errors_of(rms, 10)) == ["diff", "deseason"]
    later = [{o: e for o, e in many["deseason"][0].items() if o >= 150}]  # a longer lag: fewer windows
    shifted = {"diff": many["diff"], "deseason": later}
    assert Cm.members(rms, shifted) == ["diff"]  # tested on the 150 windows both have
    panel = {t: many[t] + errors_of(rms, 10, seed=2)[t] for t in rms}  # pooled over two series
    assert Cm.members(rms, panel) == ["diff"]


@pytest.mark.parametrize("long", [False, True])
def test_auto_averages_the_candidates_within_the_band(monkeypatch, long):
    """fit_model scores every candidate by one-step RMSE / persistence's on the validation slice
    and keeps those within BAND of the best, each with its whole ensemble (on a long series it
    screens with SCREEN networks, then refits the kept ones)."""
    if long:
        monkeypatch.setattr(Ch, "SCREEN_ABOVE", 10)
    y = seasonal(150)
    cfg = dict(P.DEFAULTS, **{**SMALL, "ensemble": 3})
    fake = {"diff": 0.9, "deseason": 0.40, "deseason_mean": 0.42}
    monkeypatch.setattr(Ch, "_validation_errors", lambda f, *a: errors_of(fake, 20)[f.target])
    f = P.fit_model(cfg, y)
    assert isinstance(f, Combination) and f.target == "deseason+deseason_mean"
    assert [len(m.nets_) for m in f.members_] == [3, 3] and f.target_scores_ == pytest.approx(fake)
    fake["deseason_mean"] = 0.5  # now only one within the band: it alone
    f = P.fit_model(cfg, y)
    assert isinstance(f, Forecaster) and f.target == "deseason" and len(f.nets_) == 3


def test_auto_scores_each_candidate_by_its_own_validation_ratio():
    y = seasonal(150)
    cfg = dict(P.DEFAULTS, **SMALL)
    f = P.fit_model(cfg, y)
    scores = f.target_scores_
    assert list(scores) == P.candidates(cfg, [y])
    kept = f.members_ if isinstance(f, Combination) else [f]
    assert kept[0].target == min(scores, key=scores.get)
    assert all(scores[m.target] <= Cm.BAND * min(scores.values()) for m in kept)
    for m in kept:  # the kept forecasters are the ones that were scored
        assert Ch._validation_ratio(m, [y], [None], [(None, None)]) == pytest.approx(scores[m.target])


def test_onnx_graph_of_a_combination_matches_its_forecasts(members):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from rnnlab.forecast.estimator.export import build, histories

    y, ms = members
    c = Combination(ms)
    o = np.arange(c.levels_read - 1, 150)
    for steps in (1, 5):
        sess = ort.InferenceSession(build(c, steps).SerializeToString())
        got = sess.run(None, {"history": histories(c, y, o)})[0]
        np.testing.assert_allclose(got, c.forecast_from(y, o, steps), rtol=1e-6)


def test_the_command_line_saves_predicts_and_exports_a_combination(tmp_path, capsys, monkeypatch):
    """A wide band keeps every candidate: the report names them, the saved combination predicts
    the saved tail as the combination does the whole series, and exports."""
    monkeypatch.setattr(Cm, "BAND", 1e9)
    monkeypatch.setattr(Cm, "LEVEL", 0.0)  # no candidate is ever significantly worse
    y = seasonal(170)
    csv = write_csv(tmp_path / "m.csv", y, start="2000-01-01", freq="MS", date_fmt="%Y-%m-%d")
    fast = [a for a in FAST if a not in ("--window", "5")]
    model, rep = tmp_path / "model", tmp_path / "r.json"
    code, out, err = run(capsys, "--csv", csv, *fast, "--no-plot", "--save", str(model), "--report", str(rep))
    assert code == 0, err
    report = json.loads(rep.read_text())
    assert f"Target {report['target']}: averaged, each within" in out
    scores = report["target_scores"]
    assert report["target"] == "+".join(sorted(scores, key=scores.get)) and "+" in report["target"]
    code, out, err = run(capsys, "predict", "--model", str(model), "--steps", "3")
    assert code == 0, err
    for v in load_model(model).predict(y, 3):
        assert f"{v:,.2f}" in out
    if importlib.util.find_spec("onnx"):  # rnnlab[onnx]
        code, out, err = run(capsys, "export", "--model", str(model), "--out", str(tmp_path / "m.onnx"))
        assert code == 0 and "network(s)" in out, err


def test_a_panel_combination_predicts_each_series_by_id(tmp_path, capsys, monkeypatch):
    """--id-column with every candidate kept: one global Forecaster per target, averaged; the
    saved combination predicts series y from its saved tail as the fitted one does."""
    from test_forecast_panel import PANEL_ARGS, write_panel

    monkeypatch.setattr(Cm, "BAND", 1e9)
    monkeypatch.setattr(Cm, "LEVEL", 0.0)
    series = {"x": seasonal(120, m=7, seed=1), "y": 30 * seasonal(110, m=7, seed=2)}
    path = write_panel(tmp_path / "p.csv", series)
    model = tmp_path / "m"
    code, out, err = run(capsys, "--csv", path, *PANEL_ARGS, *FAST, "--no-plot", "--save", str(model))
    assert code == 0, err
    f = load_model(model)
    assert isinstance(f, Combination) and sorted(f.series_ids_) == ["x", "y"]
    assert all(m.series_ids_ == f.series_ids_ for m in f.members_)
    code, out, err = run(capsys, "predict", "--model", str(model), "--id", "y", "--steps", "2")
    assert code == 0, err
    rows = [ln.split() for ln in out.splitlines() if ln.strip()[:1].isdigit()]
    want = f.predict(series["y"], 2, series="y")
    assert [float(r[1].replace(",", "")) for r in rows] == pytest.approx(want, abs=0.01)  # ds, mean, ...
