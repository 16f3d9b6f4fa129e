"""The options of every public evaluation entry point, checked once and all at once.

:func:`evaluation.evaluate`, :func:`evaluation.run_backtest` and the backtests of :mod:`evaluation.backtest`
call :func:`check_options` where they start; it collects every problem and raises one
:class:`~data_pipelines.errors.ConfigError` (litgpt's ``validate_args`` pattern), so a user sees all of
their mistakes in one line instead of one per run. The CLI keeps no copy of these rules.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from data_pipelines.errors import ConfigError

MODES = ("cross_section", "time_series")
PORTFOLIO_MODES = ("quantile", "sign")
WEIGHTINGS = ("equal", "signal")
SIZINGS = ("sign", "scaled")


def _whole(value: Any, low: int) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and int(value) == value and value >= low


def _number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def _choice(choices: tuple[str, ...]) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: v in choices), "one of " + ", ".join(map(repr, choices))


# option -> (check, what a valid value is)
RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "mode": _choice(MODES),
    "run_mode": _choice(("auto", *MODES)),
    "portfolio": _choice(PORTFOLIO_MODES),
    "weighting": _choice(WEIGHTINGS),
    "sizing": _choice(SIZINGS),
    "horizon": (lambda v: _whole(v, 1), "a whole number of sessions >= 1"),
    "n_quantiles": (lambda v: _whole(v, 2), "a whole number >= 2"),
    "cost_bps": (lambda v: _number(v) and v >= 0, "a finite number of basis points >= 0"),
    "level": (lambda v: _number(v) and 0 < v < 1, "strictly between 0 and 1"),
    "n_trials": (lambda v: _whole(v, 1), "a whole number >= 1"),
    "train_mean": (lambda v: v is None or _number(v), "a finite number or None"),
    "min_history": (lambda v: _whole(v, 1), "a whole number >= 1"),
}
# the name a user typed, where it differs from the rule's key
SHOWN = {"run_mode": "mode", "portfolio": "mode"}


def check_options(**options: Any) -> None:
    """Raise one :class:`ConfigError` listing every option that breaks its rule in :data:`RULES`.

    Parameters
    ----------
    **options
        ``name=value`` pairs; each name must be a key of :data:`RULES`.

    Raises
    ------
    ConfigError
        ``"invalid evaluation options: n_quantiles must be a whole number >= 2, not 1; cost_bps ..."``.
    """
    problems = []
    for name, value in options.items():
        check, rule = RULES[name]
        if not check(value):
            problems.append(f"{SHOWN.get(name, name)} must be {rule}, not {value!r}")
    if problems:
        raise ConfigError("invalid evaluation options: " + "; ".join(problems))
