"""Portfolios worked by hand, against alphalens, and finance properties under hypothesis."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from data_pipelines.errors import ConfigError, DataContractError
from evaluation.backtest import assign_quantiles, cross_sectional_backtest, row_quantiles, time_series_backtest
from evaluation.panel import signal_table

SESSIONS = pd.to_datetime(["2024-03-04", "2024-03-05", "2024-03-06"])


def _frame(values: list[list[float]], col: str, tickers=("A", "B", "C", "D"), sessions=SESSIONS) -> pd.DataFrame:
    rows = [(s, t, v) for s, vs in zip(sessions, values, strict=True) for t, v in zip(tickers, vs, strict=True)]
    return pd.DataFrame(rows, columns=["session", "ticker", col])


@pytest.fixture
def hand():
    signal = _frame([[1, 2, 3, 4], [4, 3, 2, 1], [1, 3, 2, 4]], "signal")
    returns = _frame([[0.01, 0.02, 0.03, 0.05], [0.01] * 4, [-0.01, 0.02, 0.0, 0.04]], "ret")
    return signal, returns


def test_quantile_long_short_by_hand(hand):
    res = cross_sectional_backtest(*hand, n_quantiles=2, cost_bps=10.0)
    d = res.daily
    np.testing.assert_allclose(d["gross"], [0.025, 0.0, 0.035], atol=1e-15)
    np.testing.assert_allclose(d["turnover"], [2.0, 4.0, 2.0])
    np.testing.assert_allclose(d["net"], [0.023, -0.004, 0.033], atol=1e-15)
    assert d["n_long"].tolist() == [2, 2, 2] and d["n_short"].tolist() == [2, 2, 2]
    w = res.weights.set_index(["session", "ticker"])["weight"]
    assert w[(SESSIONS[2], "B")] == 0.5 and w[(SESSIONS[2], "A")] == -0.5
    assert w.groupby(level="session").sum().abs().max() < 1e-15  # dollar-neutral
    np.testing.assert_allclose(res.quantile_returns.loc[SESSIONS[0]], [0.015, 0.04])


def test_overlapping_tranches_by_hand(hand):
    d = cross_sectional_backtest(*hand, n_quantiles=2, horizon=2, cost_bps=0.0).daily
    np.testing.assert_allclose(d["gross"], [0.0125, 0.0, 0.0175], atol=1e-15)
    # turnover (1/2) sum |w_s - w_{s-2}|: the book is built over two sessions, then session 3 replaces session 1
    np.testing.assert_allclose(d["turnover"], [1.0, 1.0, 1.0])


def test_signal_weighting_and_sign_mode(hand):
    d = cross_sectional_backtest(*hand, n_quantiles=2, weighting="signal", cost_bps=0.0).daily
    assert d["gross"].iloc[0] == pytest.approx(0.25 * 0.03 + 0.75 * 0.05 - 0.75 * 0.01 - 0.25 * 0.02)
    signal, returns = hand
    centred = signal.assign(signal=signal["signal"] - 2.5)
    d = cross_sectional_backtest(centred, returns, mode="sign", cost_bps=0.0).daily
    np.testing.assert_allclose(d["gross"], [0.025, 0.0, 0.035], atol=1e-15)  # same legs as the median split
    one_sided = signal.assign(signal=signal["signal"].abs() + 1)  # nothing to short: flat, still neutral
    d = cross_sectional_backtest(one_sided, returns, mode="sign", cost_bps=0.0).daily
    assert (d["gross"] == 0).all() and (d["n_long"] == 0).all()


def test_missing_returns_are_reported_not_silently_lost(hand):
    signal, returns = hand
    res = cross_sectional_backtest(signal, returns.iloc[1:], n_quantiles=2)
    assert len(res.dropped) == 1 and res.dropped["reason"].iloc[0] == "no_return"
    assert res.daily["n_long"].iloc[0] + res.daily["n_short"].iloc[0] == 3


def test_quantiles_and_quantile_returns_equal_alphalens():
    import alphalens.performance as perf
    import alphalens.utils as autils

    rng = np.random.default_rng(11)
    sessions = pd.bdate_range("2022-01-03", periods=30)
    idx = pd.MultiIndex.from_product([sessions, [f"T{i:02d}" for i in range(23)]], names=["session", "ticker"])
    df = pd.DataFrame({"signal": rng.standard_normal(len(idx)), "ret": rng.normal(0, 0.02, len(idx))}, index=idx)
    df = df.drop(index=df.sample(frac=0.2, random_state=1).index).reset_index()  # ragged cross-sections
    res = cross_sectional_backtest(df[["session", "ticker", "signal"]], df[["session", "ticker", "ret"]])
    al = df.rename(columns={"session": "date", "ticker": "asset"}).set_index(["date", "asset"])
    fd = autils.get_clean_factor(al["signal"], al[["ret"]].rename(columns={"ret": "1D"}), quantiles=5, max_loss=0)
    ours = assign_quantiles(df.assign(signal=df["signal"]), 5)
    np.testing.assert_array_equal(ours, fd["factor_quantile"].to_numpy())
    al_q = perf.mean_return_by_quantile(fd, by_date=True, demeaned=False)[0]["1D"].unstack("factor_quantile")
    np.testing.assert_allclose(res.quantile_returns.to_numpy(), al_q.to_numpy(), rtol=1e-12)
    spread = al_q[5] - al_q[1]
    np.testing.assert_allclose(res.daily["gross"], spread.to_numpy(), rtol=1e-12)


def test_signal_table_mean_and_decay():
    preds = pd.DataFrame(
        {
            "session": pd.to_datetime(["2024-01-02", "2024-01-02", "2024-01-02", "2024-01-04"]),
            "ticker": ["A", "A", "B", "B"],
            "prediction": [0.1, 0.3, 1.0, 2.0],
        }
    )
    mean = signal_table(preds).set_index(["session", "ticker"])["signal"]
    assert mean[(pd.Timestamp("2024-01-02"), "A")] == pytest.approx(0.2) and len(mean) == 3
    cal = pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"])
    dec = signal_table(preds, decay_halflife=1.0, sessions=cal, min_weight=0.2).set_index(["session", "ticker"])
    s = dec["signal"]
    assert s[(cal[1], "A")] == pytest.approx(0.2) and s[(cal[2], "A")] == pytest.approx(0.1)
    assert (cal[3], "A") not in s.index  # weight 1/8 < 0.2: faded out
    assert s[(cal[2], "B")] == pytest.approx(0.25 + 2.0) and s[(cal[3], "B")] == pytest.approx(1.125)


def test_time_series_backtest_by_hand():
    cal = pd.bdate_range("2024-01-01", periods=4)
    signal = pd.DataFrame({"session": cal, "ticker": "SPX", "signal": [0.5, -0.2, 0.0, 0.3]})
    returns = pd.DataFrame({"session": cal, "ticker": "SPX", "ret": [0.01, -0.02, 0.03, 0.01]})
    res = time_series_backtest(signal, returns, cost_bps=10.0)
    np.testing.assert_allclose(res.daily["gross"], [0.01, 0.02, 0.0, 0.01])
    np.testing.assert_allclose(res.daily["turnover"], [1, 2, 1, 1])
    np.testing.assert_allclose(res.daily["net"], res.daily["gross"] - 0.001 * res.daily["turnover"])
    assert res.quantile_returns.mean().to_dict() == pytest.approx({"short": -0.02, "flat": 0.03, "long": 0.01})
    scaled = time_series_backtest(signal, returns, sizing="scaled", min_history=2).daily
    past_sd = np.std([0.5, -0.2, 0.0], ddof=1)
    assert (scaled["gross"].iloc[:2] == 0).all()  # flat until two earlier signals exist
    assert scaled["gross"].iloc[3] == pytest.approx(min(0.3 / past_sd, 1.0) * 0.01)


def test_bad_inputs_raise_named_errors(hand):
    signal, returns = hand
    with pytest.raises(DataContractError, match="column 'ret'"):
        cross_sectional_backtest(signal, returns.drop(columns="ret"))
    with pytest.raises(ConfigError, match="mode"):
        cross_sectional_backtest(signal, returns, mode="top")
    with pytest.raises(ConfigError, match="horizon"):
        cross_sectional_backtest(signal, returns, horizon=0)
    with pytest.raises(DataContractError, match="duplicate"):
        cross_sectional_backtest(signal, pd.concat([returns, returns.iloc[:1]]))
    with pytest.raises(DataContractError, match="one ticker"):
        time_series_backtest(signal, returns)


@st.composite
def cross_sections(draw):
    n_q = draw(st.integers(2, 5))
    n_t = draw(st.integers(3, 14))
    assume((n_t - 1) % n_q != 0)  # qcut's right-closed bins give the bottom leg one extra name otherwise
    n_s = draw(st.integers(1, 4))
    floats = st.floats(-1.0, 1.0, allow_nan=False, allow_subnormal=False)
    sig = draw(st.lists(floats, min_size=n_t * n_s, max_size=n_t * n_s, unique=True))
    ret = draw(st.lists(st.floats(-0.5, 0.5, allow_nan=False), min_size=n_t * n_s, max_size=n_t * n_s))
    sessions = pd.bdate_range("2024-01-01", periods=n_s)
    idx = pd.MultiIndex.from_product([sessions, [f"T{i}" for i in range(n_t)]], names=["session", "ticker"])
    df = pd.DataFrame({"signal": sig, "ret": ret}, index=idx).reset_index()
    return df[["session", "ticker", "signal"]], df[["session", "ticker", "ret"]], n_q


@settings(max_examples=40, deadline=None)
@given(cross_sections(), st.sampled_from(["quantile", "sign"]), st.sampled_from(["equal", "signal"]))
def test_negated_signal_negates_gross(data, mode, weighting):
    signal, returns, n_q = data
    kw = dict(n_quantiles=n_q, mode=mode, weighting=weighting)
    a = cross_sectional_backtest(signal, returns, **kw).daily["gross"]
    b = cross_sectional_backtest(signal.assign(signal=-signal["signal"]), returns, **kw).daily["gross"]
    np.testing.assert_allclose(b, -a, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(cross_sections(), st.floats(0.0, 100.0), st.floats(0.0, 100.0), st.integers(1, 3))
def test_costs_never_raise_net_returns(data, c1, c2, horizon):
    signal, returns, n_q = data
    lo, hi = sorted((c1, c2))
    a = cross_sectional_backtest(signal, returns, n_quantiles=n_q, cost_bps=lo, horizon=horizon).daily
    b = cross_sectional_backtest(signal, returns, n_quantiles=n_q, cost_bps=hi, horizon=horizon).daily
    assert (a["net"] <= a["gross"] + 1e-15).all()
    assert (b["net"] <= a["net"] + 1e-15).all()


@settings(max_examples=30, deadline=None)
@given(cross_sections(), st.floats(-0.01, 0.01, allow_nan=False))
def test_dollar_neutral_book_ignores_a_common_shift(data, shift):
    """Adding the same return (a risk-free rate, a market move) to every name leaves a neutral book's P&L."""
    signal, returns, n_q = data
    a = cross_sectional_backtest(signal, returns, n_quantiles=n_q).daily["gross"]
    b = cross_sectional_backtest(signal, returns.assign(ret=returns["ret"] + shift), n_quantiles=n_q).daily["gross"]
    np.testing.assert_allclose(b, a, atol=1e-12)


def test_panel_from_predictions_equals_signal_table_then_panel():
    from evaluation.panel import build_panel, panel_from_predictions

    rng = np.random.default_rng(3)
    preds = pd.DataFrame(
        {
            "session": pd.to_datetime("2024-01-01") + pd.to_timedelta(rng.integers(0, 6, 80), unit="D"),
            "ticker": rng.choice(list("ABCDEFG"), 80),
            "prediction": rng.standard_normal(80),
        }
    )
    preds.loc[5, "prediction"] = np.nan
    cal = pd.date_range("2023-12-25", periods=20, freq="D")
    returns = pd.MultiIndex.from_product([cal, list("ABCDEFGH")], names=["session", "ticker"]).to_frame(index=False)
    returns = returns.assign(ret=rng.standard_normal(len(returns))).iloc[3:]
    a, dropped_a = panel_from_predictions(preds, returns)
    b, dropped_b = build_panel(signal_table(preds), returns)
    pd.testing.assert_index_equal(a.sessions, b.sessions)
    pd.testing.assert_index_equal(a.tickers, b.tickers)
    np.testing.assert_allclose(a.signal, b.signal)
    np.testing.assert_allclose(a.ret, b.ret)
    assert len(dropped_a) == len(dropped_b)


def test_quantile_of_tied_values_is_qcuts():
    """[0, 1, 2, 2, 2, 3] in halves: qcut's edges are 0, 2, 3, so the 2s are in the bottom half."""
    row = np.array([[0.0, 1.0, 2.0, 2.0, 2.0, 3.0]])
    expected = pd.qcut(row[0], 2, labels=False) + 1
    np.testing.assert_array_equal(row_quantiles(row, 2)[0], expected)
    assert row_quantiles(row, 2)[0].tolist() == [1, 1, 1, 1, 1, 2]


def _qcut_edge_rounded(ordered: np.ndarray, n: int) -> bool:
    """Whether one of qcut's edges lands on a data point exactly but is computed off it in floating point.

    qcut interpolates the edge of quantile ``j / n`` at position ``(j / n) (N - 1)``; when that is an integer ``p``
    in exact arithmetic, ``linspace(0, 1, n + 1)[j] * (N - 1)`` can come out a hair below or above ``p``, and
    if the neighbour on that side differs, the edge moves off ``ordered[p]`` and the values equal to it change
    bin (e.g. 19 values in sixths: the edge at position 15 is computed at 14.999...). ``row_quantiles`` bins
    exactly; such rows are where the two legitimately differ.
    """
    m = len(ordered) - 1
    for j, q in enumerate(np.linspace(0, 1, n + 1)[1:-1], start=1):
        p, rem = divmod(j * m, n)
        pos = q * m
        if rem == 0 and pos != p:
            side = p - 1 if pos < p else p + 1
            if 0 <= side <= m and ordered[side] != ordered[p]:
                return True
    return False


def test_the_rounding_guard_names_the_case_it_excludes():
    row = np.array([0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 4, 5, 5, 6, 6], dtype=float)
    assert _qcut_edge_rounded(row, 6)
    assert (pd.qcut(row, 6, labels=False) + 1)[15] == 6  # qcut's edge 4.999..., so the 5s go up a bin
    assert row_quantiles(row[None, :], 6)[0][15] == 5  # the exact edge is 5: right-closed, the 5s stay in bin 5
    assert not _qcut_edge_rounded(np.array([0, 1, 2, 2, 2, 3], dtype=float), 2)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=2, max_size=25), st.integers(2, 6))
def test_row_quantiles_equal_qcut_wherever_qcut_has_distinct_edges(values, n_quantiles):
    row = np.asarray(values, dtype=float)
    try:
        expected = pd.qcut(row, n_quantiles, labels=False) + 1
    except ValueError:
        assume(False)  # duplicate edges: qcut refuses; row_quantiles keeps n bins (see its docstring)
    assume(not _qcut_edge_rounded(np.sort(row), n_quantiles))
    np.testing.assert_array_equal(row_quantiles(row[None, :], n_quantiles)[0], expected)


def _both_prints(hand):
    signal, returns = hand
    two = pd.concat([signal.assign(entry_kind="open"), signal.assign(entry_kind="close")], ignore_index=True)
    rets = pd.concat([returns.assign(entry_kind="open"), returns.assign(entry_kind="close")], ignore_index=True)
    return two, rets


def test_two_prints_need_returns_from_each_print(hand):
    signal, returns = _both_prints(hand)
    with pytest.raises(DataContractError, match="returns carry no entry_kind"):
        cross_sectional_backtest(signal, returns.drop(columns="entry_kind").drop_duplicates(["session", "ticker"]))
    with pytest.raises(DataContractError, match="predictions carry no entry_kind"):
        cross_sectional_backtest(signal.drop(columns="entry_kind").iloc[:12], returns)
    bad = signal.astype({"entry_kind": object})
    bad.loc[3, "entry_kind"] = "noon"
    with pytest.raises(DataContractError, match="row 3, column 'entry_kind'.*'noon'"):
        cross_sectional_backtest(bad, returns)
    one = cross_sectional_backtest(*hand, n_quantiles=2, cost_bps=0.0).daily["gross"]
    both = cross_sectional_backtest(signal, returns, n_quantiles=2, cost_bps=0.0).daily["gross"]
    np.testing.assert_allclose(both, one)  # two identical sleeves of half the capital each: the same book


def test_predictions_without_their_print_are_quarantined():
    import evaluation

    preds = pd.DataFrame(
        {
            "session": pd.to_datetime(["2024-01-02"] * 4),
            "ticker": list("ABCD"),
            "prediction": [0.1, 0.2, 0.3, 0.4],
            "entry_kind": ["open", "open", None, "open"],
        }
    )
    returns = preds[["session", "ticker"]].assign(ret=0.01)
    ev = evaluation.evaluate(preds, returns, n_quantiles=2)
    assert ev.metrics["n_predictions"] == 3 and ev.quarantine["reason"].tolist() == ["missing_prediction"]
