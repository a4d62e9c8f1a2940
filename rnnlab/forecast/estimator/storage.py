"""What ``Forecaster`` writes to disk, nothing pickled: ``model.safetensors`` (the weights of
every network, ``net{i}.<name>``) and ``config.json`` (the format marker, the arguments, the
scaler, the shrink factors, the training history and the last points of the training series).

A model directory is written as a whole (``rnnlab.io.write_dir``: a fresh directory beside it,
then one swap) and read back with every JSON key type-checked, every size bounded before
anything is allocated, every tensor's name and shape checked against the configuration and
NaN/inf weights refused. Nothing in a model file names a file that rnnlab then opens.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

import rnnlab
from rnnlab.errors import UserError
from rnnlab.forecast.estimator import params as PR
from rnnlab.forecast.series import data as D
from rnnlab.forecast.series import dates as Dt
from rnnlab.forecast.series.covariates import calendar_names
from rnnlab.io import (
    check_finite,
    check_schema,
    check_target_dir,
    json_format,
    json_safe,
    owned_names,
    read_json_object,
    read_tensors,
    write_dir,
    write_json,
    write_tensors,
)

if TYPE_CHECKING:
    from rnnlab.forecast.estimator.model import Forecaster

FORMAT = "rnnlab-forecaster"
MAX_SERIES = 100_000  # series a model file may name
MAX_COVARIATES = 1000  # covariate columns of each kind
FORMAT_VERSION = 1
CONFIG_FILE, WEIGHTS_FILE = "config.json", "model.safetensors"
BOUNDS = PR.LIMITS  # sizes a model file may ask for (the command line's bounds)


def _version() -> str:
    return getattr(rnnlab, "__version__", "unknown")


COMBINATION = "rnnlab-forecast-combination"  # a Combination's directory (combination.py)


def is_forecast_model(directory) -> bool:
    """A directory written by ``save`` of a ``Forecaster`` or a ``Combination``, known by the
    format marker in its ``config.json`` and nothing else: a ``config.json`` beside a
    ``model.safetensors`` is what many programs write (a translator run, a Hugging Face model)."""
    return json_format(os.path.join(str(directory), CONFIG_FILE)) in (FORMAT, COMBINATION)


def owned(name: str) -> bool:
    """The entries a forecast model directory is made of (what a new save may drop)."""
    return name in (CONFIG_FILE, WEIGHTS_FILE) or (name.startswith("member") and name[6:].isdecimal())


def save_dir(directory, fill, overwrite: bool = False) -> str:
    """Check ``directory`` (``check_save_dir``), then write it as a whole with ``fill(tmp)``:
    a model of ours is replaced, any other file there is kept."""
    directory = check_save_dir(directory, overwrite)
    return write_dir(directory, fill, owned=owned_names(directory, is_forecast_model, owned))


def check_save_dir(directory, overwrite: bool = False) -> str:
    """Refuse (``UserError``) a target that is a file, or a non-empty directory that is not a
    forecast model, unless ``overwrite``; returns the absolute path."""
    return check_target_dir(directory, is_forecast_model, "--out", "forecast model", overwrite)


def write_model_dir(f: Forecaster, directory, overwrite: bool = False) -> str:
    """Write ``f``'s ``config.json`` and ``model.safetensors`` as one directory, all or nothing."""
    return save_dir(directory, lambda tmp: fill_model_dir(f, tmp), overwrite)


def fill_model_dir(f: Forecaster, tmp) -> None:
    """Write ``f``'s ``config.json`` and ``model.safetensors`` into the new directory ``tmp``."""
    weights = {
        f"net{i}.{k}": np.ascontiguousarray(v)
        for i, net in enumerate(f.nets_)
        for k, v in net.state_dict().items()
    }
    check_finite(weights, "the model to save")
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "rnnlab_version": _version(),
        "params": f.get_params(),
        "scaler": {"mean": f.scaler_.mean_, "scale": f.scaler_.scale_},
        "series_scalers": [  # a model of many series: each one's scaler, by id
            {"id": k, "mean": sc.mean_, "scale": sc.scale_}
            for k, sc in zip(getattr(f, "series_ids_", None) or [], getattr(f, "scalers_", []))
        ],
        "shrink": f.shrinks_,
        "calibration": getattr(f, "calibration_", None),
        "covariates": {  # how many columns of each kind, and each series' (mean, sd) of them
            "n_past": getattr(f, "n_past_", 0),
            "n_future": getattr(f, "n_future_", 0),
            "scalers": [
                None if sc is None else [list(map(float, sc[0])), list(map(float, sc[1]))]
                for sc in getattr(f, "cov_scalers_", [])
            ],
            "spec": getattr(f, "covariate_spec_", {}),
        },
        "n_train_windows": f.n_train_windows_,
        "n_valid_windows": f.n_valid_windows_,
        "history": json_safe(f.histories_),  # a diverged epoch's NaN loss is null
        "series": getattr(f, "series_info_", {}),
    }

    write_tensors(os.path.join(tmp, WEIGHTS_FILE), weights)
    write_json(os.path.join(tmp, CONFIG_FILE), config, indent=2)


def read_model_dir(cls: type[Forecaster], directory) -> Forecaster:
    """A fitted ``cls`` from a directory written by ``write_model_dir``; anything else raises
    ``UserError`` (one line: what is wrong)."""
    from safetensors import SafetensorError

    directory = str(directory)
    cfg_path, w_path = os.path.join(directory, CONFIG_FILE), os.path.join(directory, WEIGHTS_FILE)
    if not os.path.isdir(directory):
        raise UserError(f"model directory {directory} does not exist")
    if json_format(cfg_path) == COMBINATION:
        raise UserError(
            f"{directory} is a combination of forecasters: load it with rnnlab.forecast.load_model"
        )
    if not (os.path.isfile(cfg_path) and os.path.isfile(w_path)):
        raise UserError(
            f"{directory} is not an rnnlab forecast model directory "
            f"(it needs {CONFIG_FILE} and {WEIGHTS_FILE}; make one with rnnlab forecast --out)"
        )
    try:
        cfg = read_json_object(cfg_path)
        f = _from_config(cls, cfg)
        weights = read_tensors(w_path)
        check_finite(weights, WEIGHTS_FILE)
        f.nets_ = []
        for i in range(f.ensemble):
            net = f._empty_net()
            prefix = f"net{i}."
            net.load_state_dict({k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)})
            net.eval()
            f.nets_.append(net)
        if len(weights) != sum(len(n.state_dict()) for n in f.nets_):
            raise ValueError(f"{WEIGHTS_FILE} holds tensors of no network")
    except (ValueError, KeyError, TypeError, SafetensorError, UserError, OSError) as e:
        raise UserError(
            f"{directory} is not a valid rnnlab forecast model: "
            f"{str(e).splitlines()[0] if str(e) else type(e).__name__}"
        ) from None
    return f


def _from_config(cls: type[Forecaster], cfg: dict) -> Forecaster:
    """The unfitted-but-configured ``cls`` with its scaler, shrinks and series info, every key
    checked (``ValueError`` names the first bad one)."""
    fmt = cfg.get("format", "")
    if fmt not in (FORMAT, ""):  # older models carry no marker
        raise ValueError(f"format is {fmt!r}, not {FORMAT!r}")
    if not isinstance(cfg.get("format_version", FORMAT_VERSION), int) or cfg.get("format_version", 1) > 1:
        raise ValueError(f"format_version {cfg.get('format_version')!r} is newer than this rnnlab reads")
    check_schema(cfg, {"params": "dict", "scaler": "dict", "shrink": "list"}, CONFIG_FILE)
    params = {**PR.BEFORE, **cfg["params"]}  # an older model meant what it did then
    bad = sorted(set(params) - set(PR.NAMES))
    if bad:
        raise ValueError(f"unknown parameters {bad}")
    check_schema({**PR.DEFAULTS, **params}, PR.TYPES, "params")
    for name, high in BOUNDS.items():
        if name in params and params[name] > high:
            raise ValueError(f"params[{name!r}] = {params[name]} is over the limit {high}")
    f = cls(**params)
    f._validate()
    check_schema(cfg["scaler"], {"mean": "number", "scale": "number"}, "scaler")
    _check_scaler(cfg["scaler"], "scaler")
    f.scaler_ = D.StandardScaler()
    f.scaler_.mean_, f.scaler_.scale_ = float(cfg["scaler"]["mean"]), float(cfg["scaler"]["scale"])
    shrinks = cfg["shrink"]
    if len(shrinks) != f.ensemble or not all(is_number(a) and 0 <= a <= 1 for a in shrinks):
        raise ValueError("shrink must hold one factor in [0, 1] per network")
    f.shrinks_ = [float(a) for a in shrinks]
    f.calibration_ = _calibration(cfg.get("calibration"), f)
    f.scalers_, f.series_ids_ = [f.scaler_], None
    f.n_past_, f.n_future_, f.cov_scalers_, f.covariate_spec_ = _covariates(cfg.get("covariates"))
    if cfg.get("series_scalers"):
        f.series_ids_, f.scalers_ = _series_scalers(cfg["series_scalers"])
    f.histories_ = cfg.get("history", []) if isinstance(cfg.get("history"), list) else []
    n_train, n_valid = cfg.get("n_train_windows"), cfg.get("n_valid_windows")
    f.n_train_windows_ = n_train if isinstance(n_train, int) else None
    f.n_valid_windows_ = n_valid if isinstance(n_valid, int) else None
    f.series_info_ = series_info(cfg.get("series", {}))
    f.n_features_in_ = 1
    return f


def _covariates(cov) -> tuple:
    """``(n_past, n_future, scalers, spec)`` saved, checked (absent: no covariates)."""
    if cov is None:
        return 0, 0, [None], {}
    check_schema(cov, {"n_past": "int", "n_future": "int", "scalers": "list", "spec": "dict"}, "covariates")
    P, F = cov["n_past"], cov["n_future"]
    if not (0 <= P <= MAX_COVARIATES and 0 <= F <= MAX_COVARIATES) or len(cov["scalers"]) > MAX_SERIES:
        raise ValueError(f"covariates: at most {MAX_COVARIATES} columns of each kind")
    scalers: list[tuple[np.ndarray, np.ndarray] | None] = []  # (mean, sd) per series, None: no covariates
    for sc in cov["scalers"]:
        if sc is None and P + F == 0:
            scalers.append(None)
            continue
        ok = (
            isinstance(sc, list) and len(sc) == 2 and all(isinstance(v, list) and len(v) == P + F for v in sc)
        )
        if not ok or not all(is_number(x) for v in sc for x in v) or not all(x > 0 for x in sc[1]):
            raise ValueError("covariates['scalers'] must hold a mean and a positive sd per column")
        scalers.append((np.array(sc[0], np.float64), np.array(sc[1], np.float64)))
    return P, F, scalers or [None], _covariate_spec(cov["spec"], P, F)


def _covariate_spec(spec: dict, n_past: int, n_future: int) -> dict:
    """The saved covariate names and calendar, checked against the column counts: ``{}`` (none,
    or a model saved before them) or ``{"past": [names], "future": [names], "calendar": a
    frequency with a calendar cycle or null}`` (a number for the names was a TypeError)."""
    if not spec:
        return {}
    check_schema(spec, {"past": "list", "future": "list", "calendar": "str|null"}, "covariates['spec']")
    names = spec["past"] + spec["future"]
    if not all(isinstance(v, str) and 0 < len(v) <= 256 for v in names):
        raise ValueError("covariates['spec'] must name each column with a string")
    calendar = calendar_names(spec["calendar"]) if spec["calendar"] is not None else []
    if spec["calendar"] is not None and not calendar:
        raise ValueError(f"covariates['spec']['calendar'] {spec['calendar']!r:.20} has no calendar cycle")
    if len(spec["past"]) != n_past or len(spec["future"]) + len(calendar) != n_future:
        raise ValueError("covariates['spec'] must name as many columns as the model reads")
    return {"past": list(spec["past"]), "future": list(spec["future"]), "calendar": spec["calendar"]}


def _check_scaler(sc: dict, where: str) -> None:
    """A saved ``mean`` and positive ``scale`` within ``D.MAX_ABS_VALUE`` (an edited mean of 1e308
    overflowed every forecast: seven warnings, then an error; issue 34)."""
    if not 0 < sc["scale"] <= D.MAX_ABS_VALUE or not abs(sc["mean"]) <= D.MAX_ABS_VALUE:
        raise ValueError(f"{where}: 'mean' and 'scale' must lie within {D.MAX_ABS_VALUE:g}, 'scale' above 0")


def _series_scalers(rows) -> tuple[list, list]:
    """The saved per-series scalers, checked: ``[{"id", "mean", "scale"}]``, ids unique."""
    if not isinstance(rows, list) or len(rows) > MAX_SERIES:
        raise ValueError(f"series_scalers must be a list of at most {MAX_SERIES} scalers")
    ids, scalers = [], []
    for row in rows:
        check_schema(row, {"id": "str", "mean": "number", "scale": "number"}, "series_scalers[]")
        _check_scaler(row, "series_scalers[]")
        sc = D.StandardScaler()
        sc.mean_, sc.scale_ = float(row["mean"]), float(row["scale"])
        ids.append(row["id"])
        scalers.append(sc)
    if len(set(ids)) != len(ids):
        raise ValueError("series_scalers: the ids must be unique")
    return ids, scalers


# a conformal factor widens an interval about its median: past this the interval means nothing
# (1e308 gave infinite bounds and exit 0; fitted factors lie near 1)
MAX_FACTOR = 1e6


def _calibration(cal, f) -> dict | None:
    """The saved conformal factors, checked: one list of positive numbers per interval."""
    if cal is None:
        return None
    if not isinstance(cal, dict):
        raise ValueError("calibration must be a JSON object or null")
    check_schema(cal, {"intervals": "list", "factors": "list"}, "calibration")
    if [float(b) for b in cal["intervals"] if is_number(b)] != list(f.intervals):
        raise ValueError("calibration['intervals'] must be the model's intervals")
    factors = cal["factors"]
    good = lambda row: isinstance(row, list) and 0 < len(row) <= BOUNDS["horizon"]
    if len(factors) != len(f.intervals) or not all(
        good(row) and all(is_number(c) and 0 < c <= MAX_FACTOR for c in row) for row in factors
    ):
        raise ValueError(
            f"calibration['factors'] must hold positive numbers up to {MAX_FACTOR:g} per interval and step"
        )
    if len({len(row) for row in factors}) != 1:
        raise ValueError("calibration['factors'] must hold as many steps for every interval")
    applied = cal.get("applied", True)
    if not isinstance(applied, bool):
        raise ValueError("calibration['applied'] must be true or false")
    factors = [[float(c) for c in row] for row in factors]
    return {**cal, "intervals": list(f.intervals), "factors": factors, "applied": applied}


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and bool(np.isfinite(v))


def series_info(info) -> dict:
    """The saved ``series`` section, checked: names (strings) and, in newer models, the last
    dates (ISO strings) and values (finite numbers) that predict continues."""
    if not isinstance(info, dict):
        raise ValueError(f"series must be a JSON object, got {type(info).__name__}")
    out = {}
    for key in ("path", "column", "date_column", "date_format"):
        if key in info and info[key] is not None:
            if not isinstance(info[key], str) or len(info[key]) > 4096:
                raise ValueError(f"series[{key!r}] must be a string")
            out[key] = info[key]
    if "panel" in info:
        panel = info["panel"]
        if not isinstance(panel, dict) or len(panel) > MAX_SERIES:
            raise ValueError(f"series['panel'] must map at most {MAX_SERIES} ids to histories")
        out["panel"] = {str(k): _history(v, f"series['panel'][{k!r}]") for k, v in panel.items()}
    if "values" in info or "dates" in info:
        check_schema(info, {"column": "str", "date_column": "str"}, "series")
        out.update(_history(info, "series"))
    return out


def _calendar_of(info, where: str) -> dict:
    """A history's ``freq_alias`` (a pandas alias, ``none`` or null) and ``tz`` (a zone pandas
    knows, or null), checked; absent in models saved before them (read off the dates then)."""
    out = {}
    for key in ("freq_alias", "tz"):
        v = info.get(key)
        if v is not None and (not isinstance(v, str) or len(v) > 64):
            raise ValueError(f"{where}[{key!r}] must be a short string or null")
        if key in info:
            out[key] = v
    try:
        Dt.check_freq(out.get("freq_alias"))
        if out.get("tz"):
            Dt.check_tz(str(out["tz"]))
    except UserError as e:
        raise ValueError(f"{where}: {e}") from None
    return out


def _history(info, where: str) -> dict:
    """``{"values", "dates"}`` checked: one finite number per ISO date, the dates increasing."""
    check_schema(info, {"values": "list", "dates": "list"}, where)
    values, dates = info["values"], info["dates"]
    if len(values) != len(dates) or not all(is_number(v) for v in values):
        raise ValueError(f"{where}['values'] must hold one finite number per date")
    try:  # ISO dates (older models) or wall-clock times to the second
        days = np.array(dates, dtype="datetime64[s]")
    except (ValueError, TypeError, OverflowError):
        raise ValueError(f"{where}['dates'] must hold ISO dates") from None
    if len(days) > 1 and not (np.diff(days).astype(np.int64) > 0).all():
        raise ValueError(f"{where}['dates'] must be increasing")
    out = {"values": [float(v) for v in values], "dates": [str(d) for d in days]}
    out.update(_calendar_of(info, where))
    cov = info.get("covariates", {})
    if not isinstance(cov, dict) or len(cov) > MAX_COVARIATES:
        raise ValueError(f"{where}['covariates'] must map at most {MAX_COVARIATES} names to values")
    for name, col in cov.items():
        if not isinstance(col, list) or len(col) != len(values) or not all(is_number(v) for v in col):
            raise ValueError(f"{where}['covariates'][{name!r}] must hold one finite number per date")
    out["covariates"] = {str(k): [float(v) for v in col] for k, col in cov.items()}
    return out
