"""Signal statistics of the tear sheet against hand-worked cases (and alphalens where it computes the same)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from evaluation import tearsheet as ts
from evaluation.stats import har_dof, har_test, long_run_variance

DAYS = pd.bdate_range("2022-01-03", periods=3)


def _units() -> pd.DataFrame:
    """3 sessions x 3 tickers; h1 and h5 labels."""
    pred = [[1, 2, 3], [3, 1, 2], [1, 3, 2]]
    h1 = [[0.01, 0.02, 0.04], [0.0, 0.01, -0.01], [-0.02, 0.01, 0.03]]
    h5 = [[0.03, 0.0, 0.01], [0.02, 0.01, 0.0], [0.0, 0.01, 0.02]]
    rows = [
        {"session": d, "ticker": t, "prediction": pred[i][j], "h1": h1[i][j], "h5": h5[i][j]}
        for i, d in enumerate(DAYS)
        for j, t in enumerate("ABC")
    ]
    return pd.DataFrame(rows)


def test_ic_decay_cross_section_is_the_mean_daily_ic_with_har_t():
    units = _units()
    table = ts.ic_decay(units, {1: "h1", 5: "h5"}, "cross_section").set_index("horizon")
    for h, col in ((1, "h1"), (5, "h5")):
        daily = [np.corrcoef(g["prediction"], g[col])[0, 1] for _, g in units.groupby("session")]
        assert table.loc[h, "ic"] == pytest.approx(np.mean(daily))
        assert table.loc[h, "tstat"] == pytest.approx(har_test(daily, h).tstat)
        assert table.loc[h, "dof"] == har_dof(3, h) and table.loc[h, "n_sessions"] == 3


def test_ic_decay_keeps_the_entry_prints_apart():
    """Per session, the IC across tickers at each print, averaged over the prints (the headline's definition)."""
    units = pd.concat([_units().assign(entry_kind="open"), _units().assign(entry_kind="close", h1=lambda d: -d["h1"])])
    table = ts.ic_decay(units, {1: "h1"}, "cross_section")
    assert table["ic"].iloc[0] == pytest.approx(0.0, abs=1e-12)  # the prints' ICs cancel; pooling would not


def test_rank_ic_matches_alphalens():
    import alphalens.performance as alp

    rng = np.random.default_rng(0)
    days = pd.bdate_range("2022-01-03", periods=20)
    units = pd.DataFrame(
        [
            {"session": d, "ticker": f"T{j}", "prediction": rng.normal(), "h1": rng.normal()}
            for d in days
            for j in range(8)
        ]
    )
    ours = ts.ic_decay(units, {1: "h1"}, "cross_section")
    factor = units.rename(columns={"session": "date", "ticker": "asset", "prediction": "factor", "h1": "1D"})
    factor = factor.set_index(["date", "asset"]).assign(factor_quantile=1)
    theirs = alp.factor_information_coefficient(factor)
    assert ours["rank_ic"].iloc[0] == pytest.approx(theirs["1D"].mean(), rel=1e-12)


def test_time_series_ic_is_the_correlation_over_time():
    rng = np.random.default_rng(1)
    days = pd.bdate_range("2022-01-03", periods=60)
    units = pd.DataFrame({"session": days, "ticker": "IDX", "prediction": rng.normal(size=60)})
    units["ret"] = 0.3 * units["prediction"] + rng.normal(size=60)
    table = ts.ic_decay(units, {1: "ret"}, "time_series")
    assert table["ic"].iloc[0] == pytest.approx(np.corrcoef(units["prediction"], units["ret"])[0, 1])
    z = ts.ts_products(units["prediction"], units["ret"])
    assert table["tstat"].iloc[0] == pytest.approx(har_test(z.to_numpy()).tstat)
    months = ts.period_ic(units, None, "time_series", "M")
    jan = units[units["session"].dt.month == 1]
    assert months["ic"].iloc[0] == pytest.approx(np.corrcoef(jan["prediction"], jan["ret"])[0, 1])
    assert months["n_sessions"].sum() == 60


def test_period_ic_cross_section_averages_daily_ic():
    daily = pd.DataFrame(
        {"session": pd.to_datetime(["2022-01-03", "2022-01-04", "2022-02-01"]), "ic": [0.1, 0.3, -0.2]}
    )
    months = ts.period_ic(None, daily, "cross_section", "M")
    assert months[["year", "month"]].values.tolist() == [[2022, 1], [2022, 2]]
    assert months["ic"].tolist() == pytest.approx([0.2, -0.2]) and months["n_sessions"].tolist() == [2, 1]
    years = ts.period_ic(None, daily, "cross_section", "Y")
    assert years["ic"].iloc[0] == pytest.approx(0.2 / 3) and years["n_sessions"].iloc[0] == 3


def test_quantile_returns_and_spread_hand_worked():
    units = _units().rename(columns={"h1": "ret"})
    q = ts.quantile_returns(units, 2)
    # session 1: predictions 1, 2, 3 -> bins 1, 1, 2 (qcut on 3 values, 2 bins: edges 1, 2, 3)
    assert q.loc[DAYS[0], 1] == pytest.approx(0.015) and q.loc[DAYS[0], 2] == pytest.approx(0.04)
    assert q.loc[DAYS[1], 2] == pytest.approx(0.0) and q.loc[DAYS[1], 1] == pytest.approx(0.0)
    frame, summary = ts.spread_band(q, horizon=1)
    spread = (q[2] - q[1]).to_numpy()
    assert frame["cumulative"].to_numpy() == pytest.approx(np.cumsum(spread))
    lrv = long_run_variance(spread, summary["lags"])
    assert frame["band"].to_numpy() == pytest.approx(1.959963984540054 * np.sqrt(np.arange(1, 4) * lrv))
    assert summary["mean"] == pytest.approx(spread.mean())
    cum = ts.cumulative_quantiles(q, horizon=2)
    assert cum[2].iloc[-1] == pytest.approx(np.prod(1 + q[2].to_numpy() / 2) - 1)


def test_quantile_returns_bin_each_print_and_average():
    units = _units().rename(columns={"h1": "ret"})
    both = pd.concat([units.assign(entry_kind="open"), units.assign(entry_kind="close", ret=units["ret"] + 0.01)])
    q = ts.quantile_returns(both, 2)
    single = ts.quantile_returns(units, 2)
    assert np.allclose(q.to_numpy(), single.to_numpy() + 0.005)  # the mean of the two prints' bins


def test_calibration_bins_and_clustered_se():
    preds = pd.DataFrame(
        {
            "session": [1, 1, 2, 2, 3, 3, 4, 4],
            "prediction": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8],
            "target": [0.0, 0.2, 0.2, 0.6, 0.4, 0.6, 1.0, 0.6],
        }
    )
    table = ts.calibration(preds, n_bins=2)
    low, high = table.iloc[0], table.iloc[1]
    assert low["n"] == 4 and low["prediction"] == pytest.approx(0.25) and low["realised"] == pytest.approx(0.25)
    assert high["realised"] == pytest.approx(0.65)
    # cluster-robust variance of a mean with statsmodels' small-sample factor G/(G-1) * (N-1)/(N-1)
    resid = np.array([-0.25, -0.05, -0.05, 0.35])
    sums = np.array([resid[0] + resid[1], resid[2] + resid[3]])
    se = math.sqrt(2 / 1 * np.sum(sums**2)) / 4
    assert low["se"] == pytest.approx(se)
    assert low["lo"] == pytest.approx(0.25 - 1.959963984540054 * se)


def test_cluster_ols_matches_statsmodels():
    import statsmodels.api as sm

    rng = np.random.default_rng(5)
    groups = np.repeat(np.arange(40), 5)
    x = np.column_stack([np.ones(200), rng.normal(size=200)])
    y = x @ [0.1, 0.5] + rng.normal(size=40)[groups] + rng.normal(size=200)
    beta, se = ts.cluster_ols(y, x, groups)
    fit = sm.OLS(y, x).fit(cov_type="cluster", cov_kwds={"groups": groups})
    assert beta == pytest.approx(fit.params, rel=1e-10) and se == pytest.approx(fit.bse, rel=1e-10)


def test_calibration_slope_recovers_the_scale():
    rng = np.random.default_rng(2)
    x = rng.normal(0, 0.01, 400)
    preds = pd.DataFrame({"session": np.repeat(np.arange(100), 4), "prediction": x, "target": 0.5 * x})
    out = ts.calibration_slope(preds)
    assert out["slope"] == pytest.approx(0.5) and out["intercept"] == pytest.approx(0.0, abs=1e-12)
    assert out["t_slope_vs_1"] < -100 and out["n"] == 400


def test_event_study_hand_worked():
    prints = pd.DataFrame({"A": [100.0, 101.0, 103.0, 102.0, 104.0, 105.0], "M": [10.0, 10.0, 10.0, 10.0, 11.0, 11.0]})
    events = pd.DataFrame({"print_pos": [2, 3], "ticker": ["A", "A"], "session": [1, 2], "group": ["g", "g"]})
    out = ts.event_study(events, prints, window=(-2, 2), step=1)
    a = prints["A"]
    # day k > 0: return from the entry print to k prints later; day k < 0: minus the return from k prints before
    first = {-2: -(a[1] / a[0] - 1) - (a[2] / a[1] - 1), -1: -(a[2] / a[1] - 1), 0: 0.0}
    first.update({1: a[3] / a[2] - 1, 2: (a[3] / a[2] - 1) + (a[4] / a[3] - 1)})
    second = {-2: -(a[2] / a[1] - 1) - (a[3] / a[2] - 1), -1: -(a[3] / a[2] - 1), 0: 0.0}
    second.update({1: a[4] / a[3] - 1, 2: (a[4] / a[3] - 1) + (a[5] / a[4] - 1)})
    car = out.set_index("day")["car"]
    for day in range(-2, 3):
        assert car[day] == pytest.approx((first[day] + second[day]) / 2)
    assert out["n_events"].iloc[0] == 2 and out["n_sessions"].iloc[0] == 2
    se = np.std([first[2], second[2]], ddof=1) / math.sqrt(2)
    assert out.set_index("day")["se"][2] == pytest.approx(se)
    abnormal = ts.event_study(events.iloc[[0]], prints, window=(0, 2), step=1, benchmark="M")
    assert abnormal["car"].tolist() == pytest.approx(
        [0.0, a[3] / a[2] - 1, (a[3] / a[2] - 1) + (a[4] / a[3] - 1) - 0.1]
    )


def test_event_study_sums_to_the_label_over_h_sessions():
    rng = np.random.default_rng(4)
    prices = pd.DataFrame({"A": 100 * np.cumprod(1 + rng.normal(0, 0.01, 40))})
    events = pd.DataFrame({"print_pos": [10, 20], "ticker": "A", "session": [1, 2], "group": 1})
    out = ts.event_study(events, prices, window=(-3, 1), step=2).set_index("day")
    label = [prices["A"][p + 2] / prices["A"][p] - 1 for p in (10, 20)]
    assert out["car"][1] == pytest.approx(np.mean(label))


def test_event_study_drops_events_whose_window_leaves_the_prices():
    prints = pd.DataFrame({"A": np.linspace(100, 110, 10)})
    # print 0 has no session before it, print 8 none after day 1, ticker B no prices: only print 4 stays
    events = pd.DataFrame({"print_pos": [0, 4, 8, 4], "ticker": ["A", "A", "A", "B"], "session": [1, 2, 3, 4]})
    out = ts.event_study(events.assign(group=1), prints, window=(-1, 1), step=2)
    assert len(out) == 3 and set(out["n_events"]) == {1}
    assert out.set_index("day")["car"][1] == pytest.approx(prints["A"][6] / prints["A"][4] - 1)
    assert out.set_index("day")["car"][-1] == pytest.approx(-(prints["A"][4] / prints["A"][2] - 1))
