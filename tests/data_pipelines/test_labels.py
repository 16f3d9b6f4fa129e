"""Forward-return labels worked by hand on the 4-ticker x 10-session fixture (see fixtures.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data_pipelines.calendar import align_to_prints
from data_pipelines.errors import ConfigError, DataContractError
from data_pipelines.labels import REASONS, forward_labels, label_missing_counts, price_panel, rolling_alpha_beta
from tests.data_pipelines.fixtures import (
    BBB_ALPHA,
    BBB_BETA,
    SPX_CLOSE,
    bbb_close,
    fixture_panel,
    fixture_prices,
    fixture_prints,
    published,
    spx_returns,
)

# (local publication time, ticker): the rows every test below labels
ARTICLES = [
    ("2024-07-01 08:00", "AAA"),  # 0: before the open of session 0 -> open entry
    ("2024-07-03 11:00", "AAA"),  # 1: intraday on the early-close day -> close of session 2 (17:00 UTC)
    ("2024-07-09 12:00", "BBB"),  # 2: close of session 5; BBB = 0.001 + 2 x SPX
    ("2024-07-10 12:00", "CCC"),  # 3: close of session 6; CCC has a gap at session 7
    ("2024-07-02 08:00", "CCC"),  # 4: closes only -> close of session 1, not the open
    ("2024-07-12 12:00", "AAA"),  # 5: close of session 8; h=3 runs past the data
    ("2024-07-02 12:00", "ZZZ"),  # 6: unknown ticker
    ("2024-07-15 16:30", "AAA"),  # 7: after the last close of the calendar range
]


def labels(prices: pd.DataFrame | None = None, **kwargs) -> tuple[pd.DataFrame, pd.DataFrame]:
    prints = fixture_prints()
    panel = price_panel(fixture_prices() if prices is None else prices, prints)
    pub = published(*(t for t, _ in ARTICLES))
    tickers = [k for _, k in ARTICLES]
    entries = align_to_prints(pub, prints, use_opens=panel.opens_for(tickers))
    entries["ticker"] = tickers
    options = {"horizons": (1, 3), "benchmark": "SPX", "beta_window": 4, "min_beta_obs": 3} | kwargs
    return entries, forward_labels(entries, panel, **options)


def test_entries_of_the_articles():
    entries, _ = labels()
    assert entries["entry_pos"].tolist() == [0, 2, 5, 6, 1, 8, 1, -1]
    assert entries["entry_kind"].tolist()[:6] == ["open", "close", "close", "close", "close", "close"]


def test_raw_and_excess_returns_by_hand():
    _, lab = labels()
    # row 0: AAA open 100 -> 110 (h1) and 130 (h3); SPX open 1000 -> 1010 and 1030
    assert lab.loc[0, "ret_h1"] == pytest.approx(0.10)
    assert lab.loc[0, "exret_h1"] == pytest.approx(0.10 - 0.01)
    assert lab.loc[0, "ret_h3"] == pytest.approx(0.30)
    assert lab.loc[0, "exret_h3"] == pytest.approx(0.30 - 0.03)
    assert lab.loc[0, "exit_at_h1"] == pd.Timestamp("2024-07-02 13:30", tz="UTC")
    assert lab.loc[0, "exit_at_h3"] == pd.Timestamp("2024-07-05 13:30", tz="UTC")  # 3 sessions, over the holiday
    # row 1: AAA close 125 (Jul-03 early close) -> 135 (Jul-05) and 155 (Jul-09); SPX 1005 -> 1020 and 1015
    assert lab.loc[1, "ret_h1"] == pytest.approx(135 / 125 - 1)
    assert lab.loc[1, "exret_h1"] == pytest.approx(0.08 - (1020 / 1005 - 1))
    assert lab.loc[1, "ret_h3"] == pytest.approx(0.24)
    assert lab.loc[1, "exret_h3"] == pytest.approx(0.24 - (1015 / 1005 - 1))
    assert lab.loc[1, "exit_at_h1"] == pd.Timestamp("2024-07-05 20:00", tz="UTC")
    # row 4: CCC closes only: close 21 (Jul-02) -> 22 (Jul-03, early close)
    assert lab.loc[4, "ret_h1"] == pytest.approx(22 / 21 - 1)
    assert lab.loc[4, "exit_at_h1"] == pd.Timestamp("2024-07-03 17:00", tz="UTC")
    assert lab.loc[4, "exret_h1"] == pytest.approx(22 / 21 - 1 - (1005 / 1010 - 1))
    # row 5: AAA close 185 -> 195 for h1
    assert lab.loc[5, "ret_h1"] == pytest.approx(195 / 185 - 1)
    assert np.isnan(lab.loc[5, "ret_h3"]) and pd.isna(lab.loc[5, "exit_at_h3"])


def test_abnormal_return_with_known_alpha_and_beta():
    _, lab = labels()
    rb = spx_returns()
    assert lab.loc[2, "reason"] is None
    assert lab.loc[2, "abret_h1"] == pytest.approx(0.0, abs=1e-12)  # BBB's day-6 return is alpha + beta x SPX's
    ret3 = np.prod(1 + BBB_ALPHA + BBB_BETA * rb[6:9]) - 1  # closes of sessions 5 -> 8
    bench3 = SPX_CLOSE[8] / SPX_CLOSE[5] - 1
    assert lab.loc[2, "ret_h3"] == pytest.approx(ret3)
    assert lab.loc[2, "exret_h3"] == pytest.approx(ret3 - bench3)
    assert lab.loc[2, "abret_h3"] == pytest.approx(ret3 - (3 * BBB_ALPHA + BBB_BETA * bench3), abs=1e-12)
    assert abs(lab.loc[2, "abret_h3"]) > 1e-5  # compounding: not zero over 3 days


def test_rolling_alpha_beta_recovers_the_fixture():
    alpha, beta, nobs = rolling_alpha_beta(bbb_close()[:, None], SPX_CLOSE, window=4)
    assert nobs[:, 0].tolist() == [0, 1, 2, 3, 4, 4, 4, 4, 4, 4]
    np.testing.assert_allclose(beta[2:, 0], BBB_BETA, rtol=1e-9)
    np.testing.assert_allclose(alpha[2:, 0], BBB_ALPHA, atol=1e-12)
    assert np.isnan(beta[:2, 0]).all()  # fewer than two observations


def test_rolling_alpha_beta_matches_statsmodels_rolling_ols():
    from statsmodels.regression.rolling import RollingOLS

    rng = np.random.default_rng(7)
    n, window = 300, 40
    rb = rng.normal(0, 0.01, n)
    bench = 100 * np.cumprod(1 + rb)
    y = 50 * np.cumprod(1 + 0.0003 + 1.4 * rb + rng.normal(0, 0.01, n))
    y[[50, 51, 120, 200]] = np.nan  # gaps drop the returns on both sides
    bench[[90, 250]] = np.nan
    alpha, beta, nobs = rolling_alpha_beta(y[:, None], bench, window)
    r, x = y[1:] / y[:-1] - 1, bench[1:] / bench[:-1] - 1
    ok = np.isfinite(r) & np.isfinite(x)
    ref = RollingOLS(
        r, np.column_stack([np.ones(n - 1), x]), window=window, min_nobs=10, missing="drop", expanding=True
    ).fit()
    ref_params = np.vstack([np.full((1, 2), np.nan), ref.params])  # our row e = RollingOLS row e - 1
    count = np.concatenate([[0], pd.Series(ok.astype(float)).rolling(window, min_periods=1).sum().to_numpy()])
    np.testing.assert_array_equal(nobs[:, 0], count)
    usable = nobs[:, 0] >= 10
    assert usable.sum() > 200
    np.testing.assert_allclose(alpha[usable, 0], ref_params[usable, 0], rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(beta[usable, 0], ref_params[usable, 1], rtol=1e-8)


def test_reasons_and_details():
    _, lab = labels()
    assert set(lab["reason"].dropna()) <= set(REASONS)
    # a row is unusable only when no label at all exists
    assert lab["reason"].tolist() == [None] * 6 + ["unknown_ticker", "no_entry_print"]
    assert lab.loc[6, "detail"] == "ticker 'ZZZ' is not in the prices"
    assert lab.loc[7, "detail"] == "no print after publication + latency in the calendar range"
    assert lab.loc[2, "detail"] is None
    assert lab.loc[[6, 7], ["ret_h1", "exret_h1", "abret_h1"]].isna().all().all()
    assert lab.loc[[6, 7], "exit_at_h1"].isna().all()


def test_each_missing_label_has_its_reason():
    _, lab = labels()
    why = {
        c.removeprefix("missing_"): lab[c].astype(object).where(lab[c].notna(), None).tolist()
        for c in lab
        if c.startswith("missing_")
    }
    short = "short_beta_history"
    # rows 0, 1, 4: too little beta history: only the abnormal labels are missing
    for row in (0, 1, 4):
        assert [why[c][row] for c in ("ret_h1", "exret_h1", "abret_h1", "abret_h3")] == [None, None, short, short]
        assert np.isnan(lab.loc[row, "abret_h1"]) and np.isfinite(lab.loc[row, "exret_h1"])
    # row 3: CCC's gap at session 7 spoils h=1 only
    assert [why[c][3] for c in ("ret_h1", "exret_h1", "abret_h1", "ret_h3")] == ["missing_price"] * 3 + [None]
    assert lab.loc[3, "ret_h3"] == pytest.approx(29 / 26 - 1)
    # row 5: h=3 runs past the data, h=1 is there
    assert why["ret_h3"][5] == "label_past_end" and why["ret_h1"][5] is None
    assert lab.loc[5, "ret_h1"] == pytest.approx(195 / 185 - 1)
    assert why["ret_h1"][6] == "unknown_ticker" and why["abret_h3"][7] == "no_entry_print"
    assert label_missing_counts(lab)["abret_h1"] == {
        "short_beta_history": 3,
        "missing_price": 1,
        "unknown_ticker": 1,
        "no_entry_print": 1,
    }


def test_ticker_data_ending_early_is_label_past_end():
    prices = fixture_prices()
    prices = prices[~((prices["ticker"] == "AAA") & (prices["date"] == "2024-07-15"))]
    _, lab = labels(prices, horizons=(1,))
    assert lab.loc[5, "reason"] == "label_past_end"
    assert lab.loc[5, "detail"] == "exit for h=1 (2024-07-15) is after the last close price of AAA"
    assert lab.loc[5, "exit_at_h1"] == pd.Timestamp("2024-07-15 20:00", tz="UTC")
    prices = prices[~((prices["ticker"] == "AAA") & (prices["date"] == "2024-07-12"))]
    _, lab = labels(prices, horizons=(1,))
    assert lab.loc[5, "reason"] == "missing_price"  # no close at the entry (Jul-12) any more
    assert lab.loc[5, "detail"] == "no close price for AAA on 2024-07-12"


def test_benchmark_gap_misses_only_excess_and_abnormal():
    prices = fixture_prices()
    prices = prices[~((prices["ticker"] == "SPX") & (prices["date"] == "2024-07-10"))]
    _, lab = labels(prices, horizons=(1,))
    assert lab.loc[2, "reason"] is None
    assert (
        lab.loc[2, "missing_exret_h1"] == "benchmark_missing" and lab.loc[2, "missing_abret_h1"] == "benchmark_missing"
    )
    assert np.isnan(lab.loc[2, "exret_h1"]) and pd.isna(lab.loc[2, "missing_ret_h1"])
    assert lab.loc[2, "ret_h1"] == pytest.approx(bbb_close()[6] / bbb_close()[5] - 1)  # raw return still there


def test_without_benchmark_only_raw_labels():
    _, lab = labels(benchmark=None, horizons=(3, 1))
    assert list(lab.columns) == [
        "ret_h1",
        "exit_at_h1",
        "ret_h3",
        "exit_at_h3",
        "reason",
        "detail",
        "missing_ret_h1",
        "missing_ret_h3",
    ]
    assert lab.loc[0, "reason"] is None and lab.loc[1, "reason"] is None  # no beta needed
    assert lab.loc[0, "ret_h1"] == pytest.approx(0.10)


def test_open_entry_on_a_closes_only_ticker_is_missing_price():
    panel = fixture_panel()
    entries = pd.DataFrame({"ticker": ["CCC"], "entry_pos": [3], "entry_kind": ["open"]}, index=[42])
    lab = forward_labels(entries, panel, horizons=(1,), benchmark=None)
    assert lab.index.tolist() == [42]
    assert lab.loc[42, "reason"] == "missing_price"
    assert lab.loc[42, "detail"] == "no open price for CCC on 2024-07-05"


def test_label_options_are_validated():
    panel = fixture_panel()
    entries = pd.DataFrame({"ticker": ["AAA"], "entry_pos": [3], "entry_kind": ["open"]})
    bad_options = (
        {"horizons": (0, 5)},
        {"horizons": (1, 1)},
        {"horizons": (1, 100_000)},
        {"beta_window": 1},
        {"beta_window": 100_000_000},
        {"min_beta_obs": 300},
    )
    for bad in bad_options:
        with pytest.raises(ConfigError):
            forward_labels(entries, panel, benchmark="SPX", **bad)
    with pytest.raises(ConfigError, match="QQQ"):
        forward_labels(entries, panel, benchmark="QQQ")
    with pytest.raises(DataContractError, match="entry_kind"):
        forward_labels(entries.drop(columns="entry_kind"), panel, benchmark=None)


def test_price_panel_shape_and_gaps():
    panel = fixture_panel()
    assert panel.tickers.tolist() == ["AAA", "BBB", "CCC", "SPX"]
    assert panel.open.shape == panel.close.shape == (10, 4)
    assert panel.has_open.tolist() == [True, True, False, True]
    assert np.isnan(panel.close[7, 2]) and panel.close[6, 2] == 26
    assert panel.opens_for(["CCC", "AAA", "nope"]).tolist() == [False, True, False]
    assert panel.off_calendar == 0


def test_price_panel_bad_values():
    prices = fixture_prices()
    prices.loc[0, "close"] = 0.0  # AAA, Jul-01
    prices.loc[1, "close"] = -3.0
    holiday = pd.DataFrame({"date": [pd.Timestamp("2024-07-04")], "ticker": ["AAA"], "close": [1.0]})
    outside = pd.DataFrame({"date": [pd.Timestamp("2023-01-03")], "ticker": ["AAA"], "close": [1.0]})
    panel = price_panel(pd.concat([prices, holiday, outside], ignore_index=True), fixture_prints())
    assert np.isnan(panel.close[:2, 0]).all() and panel.close[2, 0] == 125
    assert panel.off_calendar == 1  # the holiday row; the 2023 row is outside the range
    no_open = price_panel(prices.drop(columns="open"), fixture_prints())
    assert not no_open.has_open.any()
    with pytest.raises(DataContractError, match="close"):
        price_panel(prices.drop(columns="close"), fixture_prints())
    dup = pd.concat([prices, prices.iloc[[5]]], ignore_index=True)
    with pytest.raises(DataContractError, match="row 5.*|duplicate"):
        price_panel(dup, fixture_prints())
