"""A synthetic news market with a known, planted signal.

:func:`make_market` returns news, prices and the truth (each article's planted effect) in the same formats
a user brings to ``newsalpha pairs``, so the whole pipeline can be checked against a known answer.

Prices follow a one-factor model on the print sequence (each session's open, then its close) of a real
exchange calendar (XNYS: holidays, early closes, DST): a market factor and per-ticker betas, Student-t
idiosyncratic shocks with GARCH(1,1) volatility clustering, overnight and intraday legs. The market index
itself is a ticker (``MKT`` by default) to serve as the benchmark.

Each article has a score in [-1, 1] (its meaning for the tagged ticker, see :mod:`data_pipelines.synthetic.text`).
Its planted effect ``scale x score`` is added to the ticker's log return, spread evenly over the ``2 x horizon``
print intervals that follow the article's *entry print*: the first print strictly after publication, the same
convention as the labels. So the label ``ret_h{horizon}`` of the pair (article, ticker) contains the effect in
full, and no price at or before the entry print depends on the article.

``signal`` is the target oracle IC: the Pearson correlation between the planted effect and the realised
label (``exret_h{horizon}`` by default) over all generated pairs. ``scale`` is solved for in closed form from
the generated news (overlapping effects of other articles on the same ticker count as noise) and the model's
unconditional noise variance. ``signal=0`` gives a null market: the prices do not depend on the news at all.

The zoo options (:mod:`data_pipelines.synthetic.zoo`) add a vocabulary drift, a distractor share and
news-free overnight jumps; with all of them off the market is the one generated before they existed.

Random streams are split per concern (:class:`numpy.random.SeedSequence`), so the same seed gives the same
tables and, written with the same library versions, the same file bytes; and the price noise does not
depend on the news, which makes signal/no-signal comparisons exact.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from data_pipelines.calendar import align_to_prints, session_prints, utc_ns
from data_pipelines.errors import ConfigError
from data_pipelines.synthetic.text import DEFAULT_MIX, KINDS, N_UNIFORMS, company_names, generate_texts
from data_pipelines.synthetic.zoo import ZOO_DEFAULTS, drift_time, jump_noise, with_distractor_share, zoo_problems

log = logging.getLogger(__name__)

LABEL_KINDS = ("ret", "exret", "abret")
TRUTH_COLUMNS = (
    "article_id",
    "ticker",
    "published_at",
    "entry_at",
    "entry_kind",
    "exit_at",
    "horizon",
    "score",
    "effect",
    "kind",
    "event",
)
# Share of weekday news per local (New York) time band: (start hour, end hour, share).
TIME_BANDS = ((0.0, 4.0, 0.05), (4.0, 9.5, 0.24), (9.5, 16.0, 0.41), (16.0, 20.0, 0.22), (20.0, 24.0, 0.08))
_CHUNK = 100_000


@dataclass
class SyntheticMarket:
    """What :func:`make_market` returns.

    Attributes
    ----------
    news : DataFrame
        article_id, published_at (UTC), text, ticker: the news contract.
    prices : DataFrame
        date (naive session date), ticker, open, close: long prices, the market index included.
    truth : DataFrame
        One row per article: article_id, ticker, published_at, entry_at, entry_kind ("open"/"close"), exit_at,
        horizon, score (meaning in [-1, 1]), effect (planted log return = scale x score), kind, event.
    info : dict
        The resolved parameters, the solved ``scale``, the largest reachable IC, betas and vols, counts.
    """

    news: pd.DataFrame
    prices: pd.DataFrame
    truth: pd.DataFrame
    info: dict = field(default_factory=dict)


def _check(
    n_tickers: int,
    n_sessions: int,
    articles_per_session: float,
    signal: float,
    horizon: int,
    warmup_sessions: int,
    tail_sessions: int,
    calibrate_to: str,
    mix: dict[str, float],
    zoo: dict[str, Any],
) -> None:
    """Raise one :class:`ConfigError` listing every bad parameter."""
    problems = zoo_problems(**zoo)
    if n_tickers < 1:
        problems.append(f"n_tickers must be >= 1, got {n_tickers}")
    if n_sessions < 2:
        problems.append(f"n_sessions must be >= 2, got {n_sessions}")
    if not articles_per_session > 0:
        problems.append(f"articles_per_session must be > 0, got {articles_per_session}")
    if not 0 <= signal < 1:
        problems.append(f"signal (target oracle IC) must be in [0, 1), got {signal}")
    if horizon < 1:
        problems.append(f"horizon must be >= 1, got {horizon}")
    if tail_sessions < horizon + 1:
        problems.append(f"tail_sessions must be >= horizon + 1 = {horizon + 1}, got {tail_sessions}")
    if warmup_sessions < 0:
        problems.append(f"warmup_sessions must be >= 0, got {warmup_sessions}")
    if calibrate_to not in LABEL_KINDS:
        problems.append(f"calibrate_to must be one of {', '.join(LABEL_KINDS)}, got '{calibrate_to}'")
    unknown = sorted(set(mix) - set(KINDS))
    if unknown:
        problems.append(f"mix has unknown kind(s) {', '.join(unknown)} (known: {', '.join(KINDS)})")
    elif any(v < 0 for v in mix.values()) or sum(mix.values()) <= 0:
        problems.append("mix weights must be >= 0 and not all 0")
    if problems:
        raise ConfigError("synthetic market: " + "; ".join(problems))


def _check_model(
    market_vol: float,
    idio_vol: tuple[float, float],
    beta_range: tuple[float, float],
    tail_df: float,
    garch: tuple[float, float],
    overnight_share: float,
    weekend_weight: float,
) -> None:
    """Raise one :class:`ConfigError` listing every bad price-model parameter."""
    problems = []
    if not market_vol > 0 or len(idio_vol) != 2 or not 0 < idio_vol[0] <= idio_vol[1]:
        problems.append(f"market_vol must be > 0 and idio_vol a range 0 < lo <= hi, got {market_vol}, {idio_vol}")
    if len(beta_range) != 2 or beta_range[0] > beta_range[1]:
        problems.append(f"beta_range must be (lo, hi) with lo <= hi, got {beta_range}")
    if not tail_df > 2:
        problems.append(f"tail_df must be > 2 (finite variance), got {tail_df}")
    if len(garch) != 2 or min(garch) < 0 or sum(garch) >= 1:
        problems.append(f"garch (alpha, beta) must be >= 0 with alpha + beta < 1, got {garch}")
    if not 0 < overnight_share < 1:
        problems.append(f"overnight_share must be in (0, 1), got {overnight_share}")
    if not weekend_weight >= 0:
        problems.append(f"weekend_weight must be >= 0, got {weekend_weight}")
    if problems:
        raise ConfigError("synthetic market: " + "; ".join(problems))


def market_sessions(calendar: str, start: str, n_before: int, n_after: int) -> pd.DataFrame:
    """``n_before`` sessions before the first session on or after ``start`` and ``n_after`` from it on."""
    t0 = pd.Timestamp(start)
    prints = session_prints(
        calendar, t0 - pd.Timedelta(days=int(n_before * 1.5) + 15), t0 + pd.Timedelta(days=int(n_after * 1.5) + 30)
    )
    i0 = int(np.searchsorted(prints.index.values, t0.to_datetime64()))
    if i0 < n_before or i0 + n_after > len(prints):
        raise ConfigError(f"calendar {calendar} cannot provide {n_before} sessions before and {n_after} after {start}")
    out = prints.iloc[i0 - n_before : i0 + n_after].copy()
    out.attrs = {}
    return out


def _publication_times(
    rng: np.random.Generator, n: int, first: pd.Timestamp, last: pd.Timestamp, weekend_weight: float
) -> pd.DatetimeIndex:
    """``n`` UTC times spread like real news over the calendar days [first, last] (New York local)."""
    days = pd.date_range(first, last, freq="D")
    weekday = days.dayofweek < 5
    w = np.where(weekday, 1.0, weekend_weight)
    day = rng.choice(len(days), size=n, p=w / w.sum())
    band_p = np.array([b[2] for b in TIME_BANDS])
    band = rng.choice(len(TIME_BANDS), size=n, p=band_p / band_p.sum())
    lo = np.array([b[0] for b in TIME_BANDS])[band]
    hi = np.array([b[1] for b in TIME_BANDS])[band]
    hours = lo + (hi - lo) * rng.random(n)
    hours = np.where(weekday[day], hours, 7.0 + 15.0 * rng.random(n))  # weekends: daytime, no market hours
    secs = np.floor(hours * 3600.0).astype(np.int64)
    edge = rng.random(n) < 0.01  # some news stamped exactly at the open or the close
    secs = np.where(edge, np.where(rng.random(n) < 0.5, 9 * 3600 + 1800, 16 * 3600), secs)
    local = pd.DatetimeIndex(days.values[day] + secs.astype("timedelta64[s]"))
    aware = local.tz_localize("America/New_York", ambiguous=np.zeros(n, dtype=bool), nonexistent="shift_forward")
    return aware.tz_convert("UTC").as_unit("ns")


def _std_t(rng: np.random.Generator, df: float, size: tuple[int, ...]) -> np.ndarray:
    """Student-t draws scaled to unit variance (normal when ``df`` is infinite)."""
    if not np.isfinite(df):
        return rng.standard_normal(size)
    return rng.standard_t(df, size) / np.sqrt(df / (df - 2.0))


def _garch_noise(
    rng: np.random.Generator,
    n_sessions: int,
    vol: np.ndarray,
    df: float,
    alpha: float,
    beta: float,
    overnight_share: float,
) -> np.ndarray:
    """Interval noise, shape (2 x n_sessions, n_series): overnight then intraday legs of GARCH(1,1) daily returns.

    The unconditional daily variance of series ``j`` is ``vol[j] ** 2``; the overnight leg carries
    ``overnight_share`` of each day's variance.
    """
    z = _std_t(rng, df, (n_sessions, 2, len(vol)))
    var0 = vol**2
    omega = var0 * (1.0 - alpha - beta)
    legs = np.sqrt(np.array([overnight_share, 1.0 - overnight_share]))[:, None]
    out = np.empty((n_sessions, 2, len(vol)))
    h = var0.copy()
    for t in range(n_sessions):
        out[t] = np.sqrt(h) * legs * z[t]
        h = omega + alpha * out[t].sum(axis=0) ** 2 + beta * h
    return out.reshape(2 * n_sessions, len(vol))


def _effect_drift(
    k: np.ndarray, p: np.ndarray, value: np.ndarray, n_series: int, n_prints: int, horizon: int
) -> np.ndarray:
    """Per-interval drift (n_prints, n_series): ``value / (2 h)`` on intervals ending at prints p+1 .. p+2h."""
    diff = np.zeros((n_prints + 2 * horizon + 2, n_series))
    np.add.at(diff, (p + 1, k), value / (2 * horizon))
    np.add.at(diff, (p + 2 * horizon + 1, k), -value / (2 * horizon))
    return np.cumsum(diff, axis=0)[:n_prints]


def _solve_scale(signal: float, z: np.ndarray, bz: np.ndarray, noise_var: np.ndarray) -> tuple[float, float]:
    """Scale s so that corr(s z, s Bz + noise) = signal; also the largest reachable correlation.

    ``bz`` is each pair's sum of unit effects inside its label window (its own and overlapping ones),
    ``noise_var`` each pair's expected noise variance over the window.
    """
    vz, vb, c = np.var(z), np.var(bz), np.cov(z, bz, bias=True)[0, 1]
    max_ic = float(c / np.sqrt(vz * vb)) if vz > 0 and vb > 0 else 0.0
    if signal == 0:
        return 0.0, max_ic
    if signal >= max_ic:
        raise ConfigError(
            f"signal {signal} is not reachable: overlapping news caps the oracle IC at {max_ic:.3f}; "
            "lower signal, articles_per_session or horizon"
        )
    v0 = float(np.mean(noise_var))
    return float(np.sqrt(signal**2 * vz * v0 / (c**2 - signal**2 * vz * vb))), max_ic


def _make_news(
    rng_time: np.random.Generator,
    rng_text: np.random.Generator,
    sessions: pd.DataFrame,
    n_articles: int,
    names: list[str],
    tickers: list[str],
    mix: dict[str, float],
    weekend_weight: float,
    drift_at: float | str | None = None,
) -> pd.DataFrame:
    """The news table (sorted by time) with the generator's score, kind and event columns.

    Articles published at or after the drift time (:func:`~data_pipelines.synthetic.zoo.drift_time`) are
    phrased from the second paraphrase bank.
    """
    first, last = sessions.index[0], sessions.index[-1]
    published = _publication_times(rng_time, n_articles, first, last, weekend_weight).sort_values()
    switch = drift_time(drift_at, first, last)
    bank = None if switch is None else np.asarray(published >= switch, dtype=np.int64)
    popularity = 1.0 / np.arange(1, len(tickers) + 1) ** 0.6
    popularity = rng_time.permutation(popularity / popularity.sum())
    company = rng_time.choice(len(tickers), size=n_articles, p=popularity)
    rival = (company + 1 + rng_time.integers(0, max(len(tickers) - 1, 1), size=n_articles)) % len(tickers)
    weights = np.array([mix.get(k, 0.0) for k in KINDS])
    kinds = rng_text.choice(len(KINDS), size=n_articles, p=weights / weights.sum())
    texts, scores, events = [], [], []
    for lo in range(0, n_articles, _CHUNK):
        hi = min(lo + _CHUNK, n_articles)
        u = rng_text.random((hi - lo, N_UNIFORMS))
        banks = None if bank is None else bank[lo:hi]
        t, s, e = generate_texts(kinds[lo:hi], company[lo:hi], rival[lo:hi], names, tickers, u, banks)
        texts += t
        scores.append(s)
        events += e
    news = pd.DataFrame(
        {
            "article_id": [f"a{i:07d}" for i in range(n_articles)],
            "published_at": published,
            "text": texts,
            "ticker": np.asarray(tickers, dtype=object)[company],
            "score": np.concatenate(scores) if scores else np.empty(0),
            "kind": np.asarray(KINDS, dtype=object)[kinds],
            "event": events,
        }
    )
    return _unique_texts(news)


def _unique_texts(news: pd.DataFrame) -> pd.DataFrame:
    """Make every (normalised text, ticker) unique, so no article is a duplicate by the builder's rule."""
    from data_pipelines.news.ingest import normalise_text

    key = normalise_text(news["text"]) + "\x00" + news["ticker"]
    dup = key.duplicated().to_numpy()
    if dup.any():
        news.loc[dup, "text"] = news.loc[dup, "text"] + " Ref " + news.loc[dup, "article_id"].str[1:] + "."
    return news


def _entry_prints(news: pd.DataFrame, sessions: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
    """Each article's entry print index in the interleaved (open, close) sequence, and the alignment table."""
    aligned = align_to_prints(news["published_at"], sessions)
    pos = aligned["entry_pos"].to_numpy()
    if (pos < 0).any():
        raise ConfigError("synthetic market: an article has no entry print (calendar too short)")
    return 2 * pos + (aligned["entry_kind"].to_numpy() == "close"), aligned


def _price_table(sessions: pd.DataFrame, log_ret: np.ndarray, p0: np.ndarray, tickers: list[str]) -> pd.DataFrame:
    """Long prices (date, ticker, open, close) from interval log returns (row q ends at print q)."""
    log_p = np.log(p0)[None, :] + np.cumsum(np.vstack([np.zeros((1, len(p0))), log_ret[1:]]), axis=0)
    price = np.exp(log_p)
    n_s, n_t = len(sessions), len(tickers)
    return pd.DataFrame(
        {
            "date": np.repeat(sessions.index.values, n_t),
            "ticker": np.tile(np.asarray(tickers, dtype=object), n_s),
            "open": price[0::2].reshape(-1),
            "close": price[1::2].reshape(-1),
        }
    )


def make_market(
    n_tickers: int = 20,
    n_sessions: int = 252,
    articles_per_session: float = 12.0,
    signal: float = 0.3,
    seed: int = 0,
    *,
    horizon: int = 1,
    calibrate_to: str = "exret",
    start: str = "2023-01-03",
    calendar: str = "XNYS",
    warmup_sessions: int = 250,
    tail_sessions: int = 10,
    benchmark: str = "MKT",
    market_vol: float = 0.011,
    idio_vol: tuple[float, float] = (0.012, 0.028),
    beta_range: tuple[float, float] = (0.6, 1.5),
    tail_df: float = 4.0,
    garch: tuple[float, float] = (0.08, 0.90),
    overnight_share: float = 0.3,
    weekend_weight: float = 0.25,
    mix: dict[str, float] | None = None,
    drift_at: float | str | None = None,
    distractor_share: float | None = None,
    jump_prob: float = 0.0,
    jump_vol: float = 4.0,
) -> SyntheticMarket:
    """Generate news, prices and the planted truth of a synthetic market.

    Parameters
    ----------
    n_tickers : int
        Number of stocks (the benchmark index comes on top).
    n_sessions : int
        Sessions that carry news, from the first session on or after ``start``.
    articles_per_session : float
        Mean articles per news session (``round(articles_per_session * n_sessions)`` in all), spread over
        calendar days, weekends included, like real news.
    signal : float
        Target oracle IC in [0, 1): corr(planted effect, realised ``{calibrate_to}_h{horizon}``). 0 = null market.
    seed : int
        Same seed, same tables.
    horizon : int
        Sessions over which each effect is realised (the label horizon it is planted for).
    calibrate_to : {"ret", "exret", "abret"}
        Label kind whose noise the calibration of ``signal`` assumes.
    start, calendar : str
        First news day and the ``exchange_calendars`` name of the sessions.
    warmup_sessions, tail_sessions : int
        Price-only sessions before the news (for trailing-beta labels) and after it (for exits).
    benchmark : str
        Ticker of the market index.
    market_vol, idio_vol, beta_range : float, (float, float), (float, float)
        Daily market vol; ranges of per-ticker daily idiosyncratic vols and betas.
    tail_df : float
        Degrees of freedom of the Student-t shocks (fat tails; ``inf`` = normal).
    garch : (float, float)
        GARCH(1,1) (alpha, beta) of daily variances (volatility clustering).
    overnight_share : float
        Share of daily variance in the overnight (close -> open) leg.
    weekend_weight : float
        News intensity of a weekend day relative to a weekday.
    mix : dict, optional
        Weights of article kinds (:data:`data_pipelines.synthetic.text.KINDS`); default ``DEFAULT_MIX``.
    drift_at : float or str, optional
        Vocabulary drift: from this fraction of the news period (or this ISO date, New York) on, articles are
        phrased from the second paraphrase bank (same meanings, other words). Default: no drift.
    distractor_share : float, optional
        Share of neutral distractors in ``mix`` (the other kinds keep their relative weights).
    jump_prob, jump_vol : float
        Per session and ticker, the probability of a news-free overnight jump and its standard deviation in
        units of the ticker's daily idiosyncratic vol (fat-tailed label noise; 0 = none). The calibration of
        ``signal`` counts the jumps' variance.

    Returns
    -------
    SyntheticMarket

    Raises
    ------
    ConfigError
        A parameter is out of range, or ``signal`` exceeds what overlapping news allows.
    """
    mix = dict(DEFAULT_MIX if mix is None else mix)
    zoo = {"drift_at": drift_at, "distractor_share": distractor_share, "jump_prob": jump_prob, "jump_vol": jump_vol}
    _check(
        n_tickers,
        n_sessions,
        articles_per_session,
        signal,
        horizon,
        warmup_sessions,
        tail_sessions,
        calibrate_to,
        mix,
        zoo,
    )
    _check_model(market_vol, idio_vol, beta_range, tail_df, garch, overnight_share, weekend_weight)
    params = {k: v for k, v in locals().items() if k in _PARAM_NAMES}
    params.update({k: v for k, v in zoo.items() if v != ZOO_DEFAULTS[k]})  # options left off stay out of the manifest
    mix = with_distractor_share(mix, distractor_share)
    ss_names, ss_time, ss_text, ss_params, ss_noise, ss_jump = np.random.SeedSequence(seed).spawn(6)
    names, tickers = company_names(n_tickers, np.random.default_rng(ss_names))
    sessions = market_sessions(calendar, start, warmup_sessions, n_sessions + tail_sessions)
    news_sessions = sessions.iloc[warmup_sessions : warmup_sessions + n_sessions]
    rngs = np.random.default_rng(ss_time), np.random.default_rng(ss_text)
    n_articles = max(int(round(articles_per_session * n_sessions)), 1)
    news = _make_news(*rngs, news_sessions, n_articles, names, tickers, mix, weekend_weight, drift_at)
    p_entry, aligned = _entry_prints(news, sessions)
    rp = np.random.default_rng(ss_params)
    model = {"beta": rp.uniform(*beta_range, n_tickers), "vol": rp.uniform(*idio_vol, n_tickers)}
    model["p0"] = np.concatenate([[4000.0], rp.uniform(20.0, 200.0, n_tickers)])
    all_vols = np.concatenate([[market_vol], model["vol"]])
    noise = _garch_noise(np.random.default_rng(ss_noise), len(sessions), all_vols, tail_df, *garch, overnight_share)
    if jump_prob > 0:  # news-free jumps on the tickers (not the index); drawn from their own stream
        noise[:, 1:] += jump_noise(np.random.default_rng(ss_jump), len(sessions), model["vol"], jump_prob, jump_vol)
    k = news["ticker"].map({t: i for i, t in enumerate(tickers)}).to_numpy()
    z = news["score"].to_numpy()
    unit = np.cumsum(_effect_drift(k, p_entry, z, n_tickers, 2 * len(sessions), horizon), axis=0)
    bz = unit[p_entry + 2 * horizon, k] - unit[p_entry, k]  # unit effects realised inside each label window
    beta = model["beta"]
    market_part = {"ret": beta**2, "exret": (beta - 1.0) ** 2, "abret": 0.0 * beta}[calibrate_to]
    idio_var = model["vol"] ** 2 * (1.0 + jump_prob * jump_vol**2)
    scale, max_ic = _solve_scale(signal, z, bz, horizon * (idio_var + market_part * market_vol**2)[k])

    drift = _effect_drift(k, p_entry, scale * z, n_tickers, 2 * len(sessions), horizon)
    mkt = noise[:, 0] + 0.0003 * np.tile([overnight_share, 1 - overnight_share], len(sessions))
    log_ret = np.column_stack([mkt, beta[None, :] * mkt[:, None] + noise[:, 1:] + drift])
    prices = _price_table(sessions, log_ret, model["p0"], [benchmark, *tickers])
    prices = prices.sort_values(["date", "ticker"], kind="stable", ignore_index=True)
    truth = _truth(news, aligned, sessions, horizon, scale)
    info = _info(params, scale, max_ic, tickers, names, model, news, sessions)
    if drift_at is not None:
        switch = drift_time(drift_at, news_sessions.index[0], news_sessions.index[-1])
        info["drift"] = {"at": switch.isoformat(), "articles_after": int((news["published_at"] >= switch).sum())}
    log.info(
        "synthetic market: %d articles, %d tickers, %d sessions, scale %.4g", len(news), n_tickers, len(sessions), scale
    )
    return SyntheticMarket(news[["article_id", "published_at", "text", "ticker"]], prices, truth, info)


_PARAM_NAMES = (
    "n_tickers",
    "n_sessions",
    "articles_per_session",
    "signal",
    "seed",
    "horizon",
    "calibrate_to",
    "start",
    "calendar",
    "warmup_sessions",
    "tail_sessions",
    "benchmark",
    "market_vol",
    "idio_vol",
    "beta_range",
    "tail_df",
    "garch",
    "overnight_share",
    "weekend_weight",
    "mix",
)


def _truth(news: pd.DataFrame, aligned: pd.DataFrame, sessions: pd.DataFrame, horizon: int, scale: float):
    """The truth table: each article's entry and exit prints, score and planted effect."""
    exit_pos = aligned["entry_pos"].to_numpy() + horizon
    is_open = aligned["entry_kind"].to_numpy() == "open"
    opens, closes = utc_ns(sessions["open_at"]), utc_ns(sessions["close_at"])
    exit_at = pd.DatetimeIndex(np.where(is_open, opens[exit_pos], closes[exit_pos])).tz_localize("UTC")
    z = news["score"].to_numpy()
    return pd.DataFrame(
        {
            "article_id": news["article_id"].to_numpy(),
            "ticker": news["ticker"].to_numpy(),
            "published_at": news["published_at"].array,
            "entry_at": aligned["entry_at"].array,
            "entry_kind": aligned["entry_kind"].astype(str).to_numpy(),
            "exit_at": exit_at.as_unit("ns"),
            "horizon": np.full(len(news), horizon, dtype=np.int64),
            "score": z,
            "effect": scale * z,
            "kind": news["kind"].to_numpy(),
            "event": news["event"].to_numpy(),
        }
    )


def _info(
    params: dict[str, Any],
    scale: float,
    max_ic: float,
    tickers: list[str],
    names: list[str],
    model: dict[str, np.ndarray],
    news: pd.DataFrame,
    sessions: pd.DataFrame,
) -> dict[str, Any]:
    """The JSON-friendly description of a generated market."""
    local = news["published_at"].dt.tz_convert("America/New_York")
    hour = local.dt.hour + local.dt.minute / 60.0
    weekend = local.dt.dayofweek >= 5
    betas, vols = model["beta"], model["vol"]
    return {
        "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in params.items()},
        "scale": scale,
        "max_reachable_ic": max_ic,
        "articles": len(news),
        "first_session": str(sessions.index[0].date()),
        "last_session": str(sessions.index[-1].date()),
        "sessions": len(sessions),
        "early_closes": int(sessions["early_close"].sum()),
        "kinds": {k: int(v) for k, v in news["kind"].value_counts().sort_index().items()},
        "timing_shares": {
            "weekend": float(weekend.mean()),
            "pre_market": float(((hour < 9.5) & ~weekend).mean()),
            "intraday": float(((hour >= 9.5) & (hour < 16) & ~weekend).mean()),
            "after_close": float(((hour >= 16) & ~weekend).mean()),
        },
        "tickers": {
            t: {"name": n, "beta": float(b), "idio_vol": float(v)}
            for t, n, b, v in zip(tickers, names, betas, vols, strict=True)
        },
    }


def forward_returns(market: SyntheticMarket, horizon: int = 1, calendar: str = "XNYS") -> pd.DataFrame:
    """Labels computed independently of the generator: re-align each article and read its prices.

    Returns
    -------
    DataFrame
        article_id, ticker, ``ret_h{h}`` and ``exret_h{h}`` (minus the benchmark ``market.info`` names).
    """
    wide_o = market.prices.pivot(index="date", columns="ticker", values="open")
    wide_c = market.prices.pivot(index="date", columns="ticker", values="close")
    sessions = session_prints(calendar, wide_o.index[0], wide_o.index[-1])
    if not sessions.index.equals(pd.DatetimeIndex(wide_o.index).as_unit("ns")):
        raise ConfigError(f"the market's price dates are not the {calendar} sessions")
    aligned = align_to_prints(market.news["published_at"], sessions)
    p = 2 * aligned["entry_pos"].to_numpy() + (aligned["entry_kind"].to_numpy() == "close")
    inter = np.empty((2 * len(wide_o), wide_o.shape[1]))  # the print sequence: open0, close0, open1, ...
    inter[0::2], inter[1::2] = wide_o.to_numpy(), wide_c.to_numpy()
    j = wide_o.columns.get_indexer(market.news["ticker"])
    b = wide_o.columns.get_loc(market.info.get("params", {}).get("benchmark", "MKT"))
    ret = inter[p + 2 * horizon, j] / inter[p, j] - 1.0
    bench = inter[p + 2 * horizon, b] / inter[p, b] - 1.0
    out = {"article_id": market.news["article_id"], "ticker": market.news["ticker"]}
    out[f"ret_h{horizon}"], out[f"exret_h{horizon}"] = ret, ret - bench
    return pd.DataFrame(out)


def oracle_ic(labels: pd.DataFrame, truth: pd.DataFrame, label: str = "exret_h1") -> dict[str, float]:
    """IC of the planted effect against a label column of ``labels`` (pairs or :func:`forward_returns`).

    Returns
    -------
    dict
        ``pearson``, ``spearman`` and ``n`` (pairs matched on article_id and ticker).
    """
    merged = labels[["article_id", "ticker", label]].merge(
        truth[["article_id", "ticker", "effect"]], on=["article_id", "ticker"]
    )
    merged = merged.dropna()
    if len(merged) < 3 or merged["effect"].std() == 0:
        return {"pearson": float("nan"), "spearman": float("nan"), "n": len(merged)}
    return {
        "pearson": float(merged["effect"].corr(merged[label])),
        "spearman": float(merged["effect"].corr(merged[label], method="spearman")),
        "n": len(merged),
    }


def verbatim_share(train_texts: pd.Series, test_texts: pd.Series) -> float:
    """Share of test texts that appear word for word in the training texts."""
    if len(test_texts) == 0:
        return float("nan")
    return float(pd.Series(test_texts).isin(set(train_texts)).mean())
