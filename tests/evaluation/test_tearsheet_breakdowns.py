"""Breakdowns of the tear sheet against hand-worked cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from evaluation import breakdowns as bd
from evaluation.sharpe import sharpe


def test_per_year_counts_sessions_and_uses_the_mode_ic():
    days = pd.to_datetime(["2021-12-29", "2021-12-30", "2022-01-03", "2022-01-04", "2022-01-05"])
    daily = pd.DataFrame(
        {
            "session": days,
            "gross": [0.01, 0.02, -0.01, 0.0, 0.03],
            "net": [0.009, 0.019, -0.011, 0.0, 0.029],
            "n_long": [1, 1, 0, 0, 1],
            "n_short": [0, 0, 1, 0, 0],
            "ic": [0.1, 0.2, 0.3, np.nan, -0.3],
        }
    )
    table = bd.per_year(daily, None, "cross_section", periods=252).set_index("year")
    assert table.loc[2021, "n_sessions"] == 2 and table.loc[2022, "n_sessions"] == 3
    assert table.loc[2022, "n_traded"] == 2
    assert table.loc[2021, "ic"] == pytest.approx(0.15) and table.loc[2022, "ic"] == pytest.approx(0.0)
    assert table.loc[2022, "mean_net"] == pytest.approx(np.mean([-0.011, 0.0, 0.029]))
    assert table.loc[2021, "sharpe_net"] == pytest.approx(sharpe([0.009, 0.019], 252))
    units = pd.DataFrame({"session": days, "prediction": [1.0, 2.0, 3.0, 4.0, 5.0], "ret": [0.0, 0.1, 0.2, 0.1, 0.4]})
    ts = bd.per_year(daily.drop(columns="ic").assign(hold=0.001), units, "time_series", 252).set_index("year")
    assert math.isnan(ts.loc[2021, "ic"])  # two sessions are too few for a correlation over time
    assert ts.loc[2022, "ic"] == pytest.approx(np.nan, nan_ok=True) and ts.loc[2022, "mean_hold"] == 0.001


def test_per_ticker_contributions_hand_worked():
    days = pd.to_datetime(["2022-01-03", "2022-01-04"])
    units = pd.DataFrame(
        {
            "session": [days[0], days[0], days[1], days[1]],
            "ticker": ["A", "B", "A", "B"],
            "prediction": [0.02, -0.01, -0.03, 0.01],
            "ret": [0.04, -0.02, 0.01, 0.03],
        }
    )
    weights = pd.DataFrame(
        {"session": [days[0], days[0], days[1], days[1]], "ticker": ["A", "B", "A", "B"], "weight": [1, -1, -1, 1.0]}
    )
    table = bd.per_ticker(weights, units, units, horizon=2).set_index("ticker")
    sleeves = bd.per_ticker(weights, units, units, horizon=2, sleeves=2).set_index("ticker")
    assert sleeves.loc["A", "contribution"] == pytest.approx((0.04 - 0.01) / 4)
    assert table.loc["A", "contribution"] == pytest.approx((0.04 - 0.01) / 2)
    assert table.loc["B", "contribution"] == pytest.approx((0.02 + 0.03) / 2)
    assert list(table.index) == ["B", "A"]  # largest contribution first
    assert table.loc["A", "n_long"] == 1 and table.loc["A", "n_short"] == 1 and table.loc["A", "n_units"] == 2
    assert table.loc["B", "hit_rate"] == pytest.approx(1.0) and table.loc["A", "hit_rate"] == pytest.approx(0.5)


def test_publication_buckets():
    utc = pd.to_datetime(
        [
            "2024-03-04 13:00",  # 08:00 New York, Monday: pre-market, enters at the open
            "2024-03-04 15:00",  # 10:00: intraday, enters at the close
            "2024-03-04 22:00",  # 17:00: after the close, enters at Tuesday's open
            "2024-03-09 15:00",  # Saturday: enters at Monday's open
        ]
    ).tz_localize("UTC")
    articles = pd.DataFrame(
        {
            "published_at": utc,
            "session": pd.to_datetime(["2024-03-04", "2024-03-04", "2024-03-05", "2024-03-11"]),
            "entry_kind": ["open", "close", "open", "open"],
            "published_after_close": [False, False, True, False],
        }
    )
    buckets = bd.publication_bucket(articles, "America/New_York")
    assert buckets.tolist() == ["pre-market", "intraday", "after close", "weekend / holiday"]


def test_by_group_statistics():
    articles = pd.DataFrame(
        {
            "session": [1, 1, 2, 2, 3, 3],
            "prediction": [0.01, -0.02, 0.03, 0.01, -0.01, 0.02],
            "target": [0.02, -0.01, -0.01, 0.04, -0.03, 0.01],
        }
    )
    groups = pd.Series(["x", "x", "x", "y", "y", "y"])
    table = bd.by_group(articles, groups, order=("y", "x")).set_index("group")
    assert list(table.index) == ["y", "x"]
    assert table.loc["x", "n"] == 3 and table.loc["x", "share"] == pytest.approx(0.5)
    assert table.loc["x", "signed_mean"] == pytest.approx((0.02 + 0.01 - 0.01) / 3)
    assert table.loc["x", "hit_rate"] == pytest.approx(2 / 3)
    assert table.loc["y", "ic"] == pytest.approx(np.corrcoef([0.01, -0.01, 0.02], [0.04, -0.03, 0.01])[0, 1])


def test_ic_by_phenomenon():
    articles = pd.DataFrame(
        {
            "article_id": list("abcdef"),
            "ticker": "T",
            "prediction": [1.0, 2.0, 3.0, 1.0, 2.0, 3.0],
            "target": [1.0, 2.0, 4.0, 3.0, 2.0, 1.0],
        }
    )
    truth = pd.DataFrame(
        {
            "article_id": list("abcdef"),
            "ticker": "T",
            "kind": ["plain"] * 3 + ["negated"] * 3,
            "effect": [1.0, 2.0, 3.0, -1.0, -2.0, -3.0],
        }
    )
    table = bd.ic_by_phenomenon(articles, truth).set_index("kind")
    assert list(table.index) == ["negated", "plain", "all"]
    assert table.loc["negated", "ic_truth"] == pytest.approx(-1.0) and table.loc["plain", "ic_truth"] == pytest.approx(
        1.0
    )
    assert table.loc["negated", "ic"] == pytest.approx(-1.0)
    assert table.loc["negated", "sign_agreement"] == 0.0 and table.loc["plain", "sign_agreement"] == 1.0
    assert table.loc["all", "n"] == 6


def test_error_analysis_picks_the_most_confident():
    articles = pd.DataFrame(
        {
            "prediction": [0.05, -0.04, 0.01, -0.03, 0.02],
            "target": [0.01, 0.02, 0.01, -0.01, -0.05],
            "text": list("abcde"),
        }
    )
    right, wrong = bd.error_analysis(articles, k=2)
    assert right["text"].tolist() == ["a", "d"] and wrong["text"].tolist() == ["b", "e"]
