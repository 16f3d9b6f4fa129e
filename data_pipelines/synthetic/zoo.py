"""The market zoo: the options that make one synthetic market unlike another, and markets drawn from a seed.

:func:`data_pipelines.synthetic.market.make_market` takes four options beyond the demo market's; each is off
by default, and a market that sets none of them is byte-identical to one generated before they existed:

``drift_at``          a vocabulary drift: from this point on (a fraction of the news period, or an ISO date)
                      every article is phrased from the second paraphrase bank
                      (:mod:`data_pipelines.synthetic.drift`), same meanings in other words
``distractor_share``  the share of neutral distractor articles (the other kinds keep their relative weights)
``jump_prob``         the probability per session and ticker of an idiosyncratic overnight jump (news-free
                      fat-tailed label noise, on top of the Student-t / GARCH shocks)
``jump_vol``          the standard deviation of a jump, in units of the ticker's daily idiosyncratic vol

:func:`zoo_params` draws a whole market (tickers, size, period, signal, distractors, tails, drift) from one
seed, so a benchmark can name its markets by seed: tuning seeds and reporting seeds never overlap.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from data_pipelines.errors import ConfigError

# the new options and their "off" values: a market leaves them out of its manifest when they are off
ZOO_DEFAULTS: dict[str, Any] = {"drift_at": None, "distractor_share": None, "jump_prob": 0.0, "jump_vol": 4.0}


def zoo_problems(drift_at: Any, distractor_share: Any, jump_prob: Any, jump_vol: Any) -> list[str]:
    """Every problem with the zoo options, in the user's words (empty when all are valid)."""
    problems = []
    if drift_at is not None:
        if isinstance(drift_at, bool) or not isinstance(drift_at, int | float | str):
            problems.append(f"drift_at must be a fraction in (0, 1) or an ISO date, got {drift_at!r}")
        elif isinstance(drift_at, str):
            try:
                pd.Timestamp(drift_at)
            except ValueError:
                problems.append(f"drift_at must be a fraction in (0, 1) or an ISO date, got '{drift_at}'")
        elif not 0 < drift_at < 1:
            problems.append(f"drift_at as a fraction of the news period must be in (0, 1), got {drift_at}")
    if distractor_share is not None and not (
        isinstance(distractor_share, int | float)
        and 0 <= distractor_share < 1
        and not isinstance(distractor_share, bool)
    ):
        problems.append(f"distractor_share must be in [0, 1), got {distractor_share!r}")
    if not isinstance(jump_prob, int | float) or not 0 <= jump_prob < 1:
        problems.append(f"jump_prob must be in [0, 1), got {jump_prob!r}")
    if not isinstance(jump_vol, int | float) or not jump_vol > 0:
        problems.append(f"jump_vol must be > 0, got {jump_vol!r}")
    return problems


def with_distractor_share(mix: dict[str, float], share: float | None) -> dict[str, float]:
    """``mix`` with the neutral kind at ``share`` of the total and the other kinds rescaled to the rest.

    Raises
    ------
    ConfigError
        ``share`` is below 1 but ``mix`` has no other kind to fill the rest.
    """
    if share is None:
        return dict(mix)
    others = {k: float(v) for k, v in mix.items() if k != "neutral"}
    total = sum(others.values())
    if total <= 0:
        raise ConfigError("synthetic market: distractor_share needs at least one non-neutral kind in mix")
    out = {k: (1.0 - share) * v / total for k, v in others.items()}
    out["neutral"] = float(share)
    return out


def drift_time(drift_at: float | str | None, first: pd.Timestamp, last: pd.Timestamp) -> pd.Timestamp | None:
    """The UTC instant from which articles use the second bank: ``first + drift_at x (last + 1 day - first)``
    for a fraction (the news period runs over the calendar days [first, last]), midnight New York of the date
    for a date."""
    if drift_at is None:
        return None
    if isinstance(drift_at, str):
        day = pd.Timestamp(drift_at)
        return (day.tz_convert("UTC") if day.tzinfo else day.tz_localize("America/New_York").tz_convert("UTC")).as_unit(
            "ns"
        )
    start = pd.Timestamp(first).tz_localize("America/New_York")
    end = (pd.Timestamp(last) + pd.Timedelta(days=1)).tz_localize("America/New_York")
    return (start + drift_at * (end - start)).tz_convert("UTC").as_unit("ns")


def jump_noise(rng: np.random.Generator, n_sessions: int, vol: np.ndarray, prob: float, size: float) -> np.ndarray:
    """Overnight jumps, shape (2 x n_sessions, n_series): with probability ``prob`` per session and series a
    normal jump of standard deviation ``size x vol``, on the overnight leg (row 2t); intraday rows are zero."""
    out = np.zeros((2 * n_sessions, len(vol)))
    hit = rng.random((n_sessions, len(vol))) < prob
    out[0::2] = np.where(hit, rng.standard_normal((n_sessions, len(vol))) * size * vol[None, :], 0.0)
    return out


def zoo_params(
    seed: int,
    *,
    articles: tuple[int, int] = (2_000, 3_000),
    tickers: tuple[int, int] = (20, 60),
    signal: tuple[float, float] = (0.1, 0.5),
) -> dict[str, Any]:
    """The ``make_market`` arguments of zoo market ``seed``: every property drawn from it.

    Parameters
    ----------
    seed : int
        Names the market: the same seed, the same market.
    articles : (int, int)
        Range of the number of articles (2,000 to 50,000 in the zoo; small for CPU-bound tuning).
    tickers : (int, int)
        Range of the number of tickers.
    signal : (float, float)
        Range of the target oracle IC.

    Returns
    -------
    dict
        Keyword arguments of :func:`data_pipelines.synthetic.market.make_market`: 1-2 years of XNYS news
        starting between 2012 and 2021, the signal drawn from ``signal``, distractor share in [0.15, 0.4], Student-t
        tails with 3-8 degrees of freedom, overnight jumps on half the markets, a vocabulary drift at 55-80%
        of the period on two markets in three.
    """
    rng = np.random.default_rng(np.random.SeedSequence([20_240_512, seed]))
    n_sessions = int(rng.choice([252, 378, 504]))
    n_articles = int(rng.integers(articles[0], articles[1] + 1))
    year = int(rng.integers(2012, 2022))
    params: dict[str, Any] = {
        "n_tickers": int(rng.integers(tickers[0], tickers[1] + 1)),
        "n_sessions": n_sessions,
        "articles_per_session": n_articles / n_sessions,
        "signal": round(float(rng.uniform(*signal)), 3),
        "seed": int(seed),
        "start": f"{year}-01-02",
        "distractor_share": round(float(rng.uniform(0.15, 0.4)), 3),
        "tail_df": float(rng.choice([3.0, 4.0, 5.0, 8.0])),
    }
    if rng.random() < 0.5:
        params["jump_prob"] = round(float(rng.uniform(0.01, 0.04)), 3)
        params["jump_vol"] = round(float(rng.uniform(3.0, 6.0)), 2)
    if rng.random() < 2 / 3:
        params["drift_at"] = round(float(rng.uniform(0.55, 0.8)), 3)
    return params
