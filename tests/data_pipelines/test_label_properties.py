"""Property tests (hypothesis): entries never precede publication, labels read no price outside their window."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data_pipelines.calendar import align_to_prints, session_prints, utc_ns
from data_pipelines.labels import forward_labels, price_panel

PRINTS = session_prints("XNYS", "2024-01-02", "2024-04-30")  # ~80 sessions, the March DST switch inside
N_S = len(PRINTS)
TICKERS = ["AAA", "BBB", "CCC", "SPX"]  # CCC: closes only; SPX: the benchmark
HORIZONS = (1, 3)
WINDOW = 20
T0 = PRINTS["open_at"].iloc[0].value - 86_400 * 10**9 // 2  # half a day before the first open
SPAN = PRINTS["close_at"].iloc[-1].value + 86_400 * 10**9 - T0
PRINT_AT = np.stack([utc_ns(PRINTS["open_at"]), utc_ns(PRINTS["close_at"])])


def random_prices(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for ticker in TICKERS:
        close = 100 * np.cumprod(1 + rng.normal(0, 0.02, N_S))
        opn = close * (1 + rng.normal(0, 0.005, N_S)) if ticker != "CCC" else np.full(N_S, np.nan)
        frames.append(pd.DataFrame({"date": PRINTS.index, "ticker": ticker, "open": opn, "close": close}))
    return pd.concat(frames, ignore_index=True)


def label(prices: pd.DataFrame, pub: pd.Series, tickers: list[str], latency: pd.Timedelta):
    panel = price_panel(prices, PRINTS)
    entries = align_to_prints(pub, PRINTS, latency=latency, use_opens=panel.opens_for(tickers))
    entries["ticker"] = tickers
    lab = forward_labels(entries, panel, horizons=HORIZONS, benchmark="SPX", beta_window=WINDOW, min_beta_obs=5)
    return entries, lab


# (minutes after T0, ticker); day and minute are drawn apart so that articles spread over the whole range
minutes = st.builds(lambda d, m: d * 1440 + m, st.integers(0, SPAN // 86_400_000_000_000), st.integers(0, 1439))
articles = st.lists(st.tuples(minutes, st.sampled_from(TICKERS)), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(articles, st.integers(0, 600))
def test_no_entry_at_or_before_publication_plus_latency(rows, latency_s):
    pub = pd.Series(pd.DatetimeIndex([T0 + m * 60_000_000_000 for m, _ in rows], tz="UTC"))
    latency = pd.Timedelta(seconds=latency_s)
    tickers = [t for _, t in rows]
    entries = align_to_prints(pub, PRINTS, latency=latency, use_opens=np.array([t != "CCC" for t in tickers]))
    has = entries["entry_pos"].to_numpy() >= 0
    assert (entries["entry_at"][has] > (pub + latency)[has]).all()
    assert (entries.loc[[t == "CCC" for t in tickers], "entry_kind"].dropna() == "close").all()
    # no entry only after the last close of the range, or before the close preceding its first session
    q = (pub + latency)[~has]
    assert ((q >= PRINTS["close_at"].iloc[-1]) | (q < PRINTS.attrs["previous_close"])).all()


def _perturb_outside(prices: pd.DataFrame, lo: int, hi: int, seed: int) -> pd.DataFrame:
    """Multiply every open and close whose print time is outside ``[lo, hi]`` (int64 ns) by a random factor."""
    rng = np.random.default_rng(seed)
    pos = PRINTS.index.get_indexer(prices["date"])
    out = prices.copy()
    for i, kind in enumerate(("open", "close")):
        at = PRINT_AT[i][pos]
        outside = (at < lo) | (at > hi)
        out.loc[outside, kind] *= rng.uniform(0.5, 2.0, int(outside.sum()))
    return out


@pytest.mark.slow
@settings(max_examples=50, deadline=None)
@given(articles, st.integers(0, 2**16), st.integers(0, 10**6), st.integers(0, 120))
def test_labels_ignore_every_price_outside_their_window(rows, seed, target, latency_s):
    """Change *all* prints (every ticker, the benchmark too) outside one article's window at once and compare."""
    pub = pd.Series(pd.DatetimeIndex([T0 + m * 60_000_000_000 for m, _ in rows], tz="UTC"))
    tickers = [t for _, t in rows]
    latency = pd.Timedelta(seconds=latency_s)
    prices = random_prices(seed)
    entries, before = label(prices, pub, tickers, latency)
    i = target % len(rows)
    pos = int(entries["entry_pos"].iloc[i])
    if pos < 0:
        return
    entry = int(utc_ns(entries["entry_at"])[i])
    beta_start = int(PRINT_AT[1][max(pos - WINDOW - 1, 0)])
    for h in HORIZONS:
        exit_ = int(utc_ns(before[f"exit_at_h{h}"])[i])
        if exit_ == np.iinfo(np.int64).min:
            continue
        _, raw = label(_perturb_outside(prices, entry, exit_, seed + h), pub, tickers, latency)
        _, ab = label(_perturb_outside(prices, beta_start, exit_, seed + h), pub, tickers, latency)
        for col in (f"ret_h{h}", f"exret_h{h}"):
            np.testing.assert_array_equal(before[col].iloc[i], raw[col].iloc[i])
        np.testing.assert_array_equal(before[f"abret_h{h}"].iloc[i], ab[f"abret_h{h}"].iloc[i])
        assert before["reason"].iloc[i] == ab["reason"].iloc[i]
        if before["reason"].iloc[i] is None and tickers[i] != "SPX":  # not vacuous: a wider change does move it
            _, wider = label(_perturb_outside(prices, entry + 1, exit_, seed + h), pub, tickers, latency)
            assert wider[f"ret_h{h}"].iloc[i] != before[f"ret_h{h}"].iloc[i]


def _window_bounds(entries: pd.DataFrame, lab: pd.DataFrame, h: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Entry time, exit time and beta-window start time (the close before the first window return), int64 ns."""
    pos = entries["entry_pos"].to_numpy()
    entry = utc_ns(entries["entry_at"])
    exit_ = utc_ns(lab[f"exit_at_h{h}"])
    beta_start = PRINT_AT[1][np.clip(pos - WINDOW - 1, 0, None)]
    return entry, exit_, beta_start


@settings(max_examples=40, deadline=None)
@given(
    articles,
    st.integers(0, 2**16),
    st.integers(0, 10**6),
    st.one_of(st.sampled_from([-WINDOW - 2, -WINDOW - 1, -1, 0, 1, 3, 4]), st.integers(-WINDOW - 3, 6)),
    st.sampled_from(["all", "own", "benchmark", "other"]),
    st.sampled_from(["open", "close"]),
    st.floats(0.5, 2.0).filter(lambda f: f != 1.0),
    st.integers(0, 120),
)
def test_labels_ignore_prices_outside_their_window(rows, seed, target, offset, whose, kind, factor, latency_s):
    """Perturb one print near one article's window (of all tickers, its own, the benchmark or another) and compare."""
    pub = pd.Series(pd.DatetimeIndex([T0 + m * 60_000_000_000 for m, _ in rows], tz="UTC"))
    tickers = [t for _, t in rows]
    latency = pd.Timedelta(seconds=latency_s)
    prices = random_prices(seed)
    entries, before = label(prices, pub, tickers, latency)
    target %= len(rows)
    sess = int(np.clip(entries["entry_pos"].iloc[target] + offset, 0, N_S - 1))
    other = "BBB" if tickers[target] == "AAA" else "AAA"
    ticker = {"all": "SPX", "own": tickers[target], "benchmark": "SPX", "other": other}[whose]
    changed = prices.copy()
    hit = changed["date"] == PRINTS.index[sess]
    if whose != "all":
        hit &= changed["ticker"] == ticker
    changed.loc[hit, kind] *= factor
    _, after = label(changed, pub, tickers, latency)
    at = PRINT_AT[0 if kind == "open" else 1][sess]
    for h in HORIZONS:
        entry, exit_, beta_start = _window_bounds(entries, before, h)
        has_exit = exit_ != np.iinfo(np.int64).min
        outside = ~has_exit | (at < entry) | (at > exit_)
        for col in (f"ret_h{h}", f"exret_h{h}"):
            np.testing.assert_array_equal(before[col][outside], after[col][outside])
        outside_beta = ~has_exit | (at < beta_start) | (at > exit_)
        np.testing.assert_array_equal(before[f"abret_h{h}"][outside_beta], after[f"abret_h{h}"][outside_beta])
        assert before["reason"][outside_beta].equals(after["reason"][outside_beta])
        # not vacuous: changing the entry or exit print of a row's own ticker or of the benchmark moves its label
        usable = has_exit & before["reason"].isna().to_numpy() & ((at == entry) | (at == exit_))
        moved = usable & ((np.array(tickers) == ticker) != (ticker == "SPX")) & (whose != "all")
        assert (before[f"exret_h{h}"][moved] != after[f"exret_h{h}"][moved]).all()
