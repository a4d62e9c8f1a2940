"""``Combination``: the forecasts of several fitted ``Forecaster``s, one per target, averaged.

``--target auto`` fits a forecaster per candidate target and scores each on its validation
slice (``pipeline.fit_model``). When several score close to the best (within ``BAND``, and not
significantly worse: ``members``), none of them is clearly better on so few windows, and
picking one is a bet on noise: the combination averages them instead (Bates & Granger 1969;
the M4 competition's lesson that combinations beat their members, Makridakis et al. 2020). With K members::

    y_hat(t + h)    = (1 / K) sum_k y_hat_k(t + h)          the point forecast
    Q(tau; t + h)   = (1 / K) sum_k Q_k(tau; t + h)         each quantile level averaged

Averaging quantiles ("Vincentization", Lichtendahl, Grushka-Cockayne & Winkler 2013) keeps
each member's calibrated intervals (``uncertainty``) and gives a valid quantile function
(an average of non-decreasing ones); a mixture of the members' paths would widen the intervals
by the members' disagreement, which their own calibration has already priced in.

Saved as a directory: ``config.json`` (the format marker, the targets, their validation scores,
the series' tail for predict) and ``member0/`` .. ``member{K-1}/``, each a ``Forecaster``'s own
directory (``storage``); the member directories' names come from their count, never from the
file. ``model.load_model`` reads either kind.
"""

from __future__ import annotations

import os

import numpy as np

from rnnlab.errors import NotFittedError, UserError
from rnnlab.forecast.estimator import storage as St
from rnnlab.forecast.estimator.forecasts import Forecasts
from rnnlab.forecast.estimator.metrics import dm_test
from rnnlab.io import check_schema, read_json_object, write_json

BAND = 1.1  # members: the candidates whose validation score is within 10% of the best one's ...
LEVEL = 0.05  # ... and that are not worse than it at this level (one-sided Diebold-Mariano)
FORMAT = St.COMBINATION
MAX_MEMBERS = 16
# what every member shares (the configuration the CLI chose); read from the first member
SHARED = (
    "window horizon strategy cell hidden_size num_layers likelihood intervals season "
    "n_past_ n_future_ series_ids_".split()
)


def members(scores: dict, errors: dict | None = None) -> list:
    """The candidate targets "auto" keeps, best first: those whose validation score
    ``scores[t]`` is within ``BAND`` of the best and, given their validation errors
    (``errors[t]``: per series ``{origin: error}``, scaled alike), whose squared errors are not
    larger than the best's at ``LEVEL`` (a one-sided Diebold-Mariano test on the windows both
    have, pooled over the series).

    The band alone ignores how many windows measured the difference: a gap inside the band
    can lie far outside the noise on hundreds of validation windows and inside it on a dozen
    (docs/MEASUREMENTS.md, "Why the forecaster chooses as it does")."""
    best = min(scores, key=lambda t: scores[t])
    keep = [best]
    for t in sorted(scores, key=lambda t: scores[t]):
        if t == best or scores[t] > BAND * scores[best]:
            continue
        if errors is not None:
            e_t, e_b = [], []
            for mine, theirs in zip(errors[t], errors[best]):
                common = sorted(set(mine) & set(theirs))
                e_t += [mine[o] for o in common]
                e_b += [theirs[o] for o in common]
            dm = dm_test(np.array(e_t), np.array(e_b), 1)
            if dm["statistic"] is not None and dm["statistic"] > 0 and dm["p_value"] / 2 < LEVEL:
                continue  # significantly worse than the best
        keep.append(t)
    return keep


class Combination(Forecasts):
    """The average of fitted ``Forecaster``s of one series (or one panel) that differ in their
    target only (module docstring)."""

    def __init__(self, members, scores=None):
        members = list(members)
        if not members or not all(
            isinstance(m, Forecasts) and not isinstance(m, Combination) for m in members
        ):
            raise UserError("a Combination needs one or more fitted Forecasters")
        if len(members) > MAX_MEMBERS:
            raise UserError(f"a Combination holds at most {MAX_MEMBERS} forecasters, got {len(members)}")
        first = members[0]
        for m in members:
            m._check_fitted()
            for name in SHARED:
                if getattr(m, name, None) != getattr(first, name, None):
                    raise UserError(f"the forecasters of a Combination must share {name}")
        self.members_ = members
        self.target_scores_ = scores
        self.series_info_: dict = {}
        self.covariate_spec_: dict = {}

    def __getattr__(self, name):
        if name in SHARED:  # only called when normal lookup fails: the members' common settings
            return getattr(self.__dict__["members_"][0], name)
        raise AttributeError(f"'Combination' object has no attribute {name!r}")

    def __repr__(self):
        return f"Combination(target={self.target!r}, members={len(self.members_)})"

    def _check_fitted(self):
        if not self.members_:
            raise NotFittedError("this Combination has no members")

    # -- what the applications read -----------------------------------------------------
    @property
    def target(self) -> str:
        """The members' targets joined by ``+``, e.g. ``deseason+deseason_mean``."""
        return "+".join(m.target for m in self.members_)

    @property
    def probabilistic(self) -> bool:
        return self.members_[0].probabilistic

    @property
    def first_origin(self) -> int:
        return max(m.first_origin for m in self.members_)

    @property
    def levels_read(self) -> int:
        return max(m.levels_read for m in self.members_)

    @property
    def nets_(self) -> list:
        return [net for m in self.members_ for net in m.nets_]

    @property
    def shrinks_(self) -> list:
        return [a for m in self.members_ for a in m.shrinks_]

    @property
    def histories_(self) -> list:
        return [h for m in self.members_ for h in m.histories_]

    @property
    def calibration_(self):
        """The first member's calibration (the report's); each member applies its own."""
        return self.members_[0].calibration_

    def get_params(self, deep=True) -> dict:
        return {**self.members_[0].get_params(), "target": self.target}

    # -- forecasts --------------------------------------------------------------------------
    def _check_origins(self, y, origins):
        origins = np.asarray(origins, np.int64).reshape(-1)
        t0 = self.first_origin
        if len(origins) and (origins.min() < t0 or origins.max() >= len(np.asarray(y))):
            raise UserError(
                f"forecast origins must lie in [{t0}, {len(np.asarray(y)) - 1}] "
                f"(targets {self.target} with a window of {self.window} need {t0 + 1} values up to "
                "the origin)"
            )
        return origins

    def forecast_from(self, y, origins, steps=None, series=None, past=None, future=None) -> np.ndarray:
        """``(M, steps)``: the mean of the members' ``forecast_from`` (``Forecaster``'s)."""
        return self.forecast_many([(y, origins, series, past, future)], steps)[0]

    def forecast_many(self, items, steps=None) -> list:
        """``forecast_from`` of every ``(y, origins, series, past, future)`` in ``items``, each
        member's batched (``Forecaster.forecast_many``)."""
        items = [(y, self._check_origins(y, o), *rest) for y, o, *rest in items]
        each = [m.forecast_many(items, steps) for m in self.members_]  # [member][item]
        return [np.mean(qs, axis=0) for qs in zip(*each)]

    def quantiles_from(
        self, y, origins, levels, steps=None, calibrated=True, series=None, past=None, future=None
    ) -> np.ndarray:
        """``(M, steps, L)``: the mean of the members' quantiles at each level."""
        return self.quantiles_many([(y, origins, series, past, future)], levels, steps, calibrated)[0]

    def quantiles_many(self, items, levels, steps=None, calibrated=True, progress=None) -> list:
        """``quantiles_from`` of every ``(y, origins, series, past, future)`` in ``items``, each
        member's batched (``Forecaster.quantiles_many``); ``progress(done, total)`` counts the
        networks of every member (``total`` = all members' networks x batches)."""
        items = [(y, self._check_origins(y, o), *rest) for y, o, *rest in items]
        each = []
        for k, m in enumerate(self.members_):
            report = None
            if progress is not None:  # member k's count, scaled to the whole: members have equal shares
                report = lambda d, t, k=k: progress(k * t + d, t * len(self.members_))
            each.append(m.quantiles_many(items, levels, steps, calibrated, report))
        return [np.mean(qs, axis=0) for qs in zip(*each)]

    # -- save / load ------------------------------------------------------------------------
    def save(self, directory, overwrite=False) -> str:
        """``config.json`` and one ``Forecaster`` directory per member, all or nothing."""
        St.check_save_dir(directory, overwrite)  # before any work
        config = {
            "format": FORMAT,
            "format_version": 1,
            "targets": [m.target for m in self.members_],
            "target_scores": self.target_scores_,
            "series": self.series_info_,
            "covariate_spec": self.covariate_spec_,
        }

        def fill(tmp):
            for k, m in enumerate(self.members_):
                os.mkdir(os.path.join(tmp, f"member{k}"))
                St.fill_model_dir(m, os.path.join(tmp, f"member{k}"))
            write_json(os.path.join(tmp, St.CONFIG_FILE), config, indent=2)

        return St.save_dir(directory, fill, overwrite)

    @classmethod
    def load(cls, directory, member) -> Combination:
        """A saved combination, each member read by ``member.load`` (``Forecaster``: what
        ``rnnlab.forecast.load_model`` passes); anything else raises ``UserError`` (one line)."""
        directory = str(directory)
        try:
            cfg = read_json_object(os.path.join(directory, St.CONFIG_FILE))
            if cfg.get("format") != FORMAT or cfg.get("format_version") != 1:
                raise ValueError(f"format is {cfg.get('format')!r} version {cfg.get('format_version')!r}")
            check_schema(cfg, {"targets": "list", "series": "dict", "covariate_spec": "dict"}, St.CONFIG_FILE)
            n = len(cfg["targets"])
            if not 1 <= n <= MAX_MEMBERS:
                raise ValueError(f"targets must name 1 to {MAX_MEMBERS} members")
            scores = cfg.get("target_scores")
            if scores is not None and not (
                isinstance(scores, dict) and all(v is None or St.is_number(v) for v in scores.values())
            ):
                raise ValueError("target_scores must map targets to numbers")
            series = St.series_info(cfg["series"])
        except (ValueError, TypeError, UserError, OSError) as e:
            raise UserError(
                f"{directory} is not a valid rnnlab forecast model: {str(e).splitlines()[0]}"
            ) from None
        members = [member.load(os.path.join(directory, f"member{k}")) for k in range(n)]
        if [m.target for m in members] != cfg["targets"]:
            raise UserError(
                f"{directory} is not a valid rnnlab forecast model: its members' targets differ from "
                "config.json's"
            )
        try:  # the covariate names, checked as a member's are (a null list was a TypeError later)
            spec = St._covariate_spec(cfg["covariate_spec"], members[0].n_past_, members[0].n_future_)
        except (ValueError, TypeError) as e:
            raise UserError(f"{directory} is not a valid rnnlab forecast model: {e}") from None
        out = cls(members, scores)
        out.series_info_, out.covariate_spec_ = series, spec
        return out
