"""The trading-fitness component of survival agents.

An agent's actions (decision time, ticker, target weight) are traded at the first price print strictly after
each decision, the same convention as the labels (``data_pipelines.calendar.align_to_prints``), so no agent can
trade on a price it could not have had. Prints are each session's open and close (the early close on half
days); a ticker without opens trades at closes only. Costs are charged in bp of traded value per side.

The simulation is in shares: at an execution print the position is rebalanced to ``weight x equity``, then
drifts with prices until the next action on that ticker. Equity is marked at every print; an agent whose
equity falls under ``ruin x initial`` is liquidated at that print and trades no more.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from data_pipelines.calendar import align_to_prints, session_prints
from data_pipelines.contracts import require_columns
from data_pipelines.errors import ConfigError, DataContractError
from evaluation.stats import max_drawdown, newey_west_tstat

INITIAL_EQUITY = 1.0  # fitness is scale-free: weights are fractions of equity


@dataclass
class FitnessRecord:
    """What :meth:`TradingFitness.score` returns; ``asdict`` of it goes into telemetry."""

    net_return: float
    sharpe: float
    max_drawdown: float
    turnover: float
    nw_tstat: float
    sessions_alive: int
    n_sessions: int
    survived: bool
    costs_paid: float
    final_equity: float

    def to_dict(self) -> dict:
        return asdict(self)


def _prices_long(prices: pd.DataFrame | object) -> pd.DataFrame:
    if hasattr(prices, "load") and not isinstance(prices, pd.DataFrame):
        prices = prices.load()
    require_columns(prices, ("date", "ticker", "close"), what="prices")
    out = prices.copy()
    out["date"] = pd.to_datetime(out["date"]).dt.tz_localize(None).dt.normalize()
    if "open" not in out:
        out["open"] = np.nan
    return out


class TradingFitness:
    """Score an agent's actions by trading them on real sessions with costs.

    Parameters
    ----------
    prices : DataFrame or PriceSource
        Long prices (date, ticker, close, optional open), adjusted.
    cost_bps : float
        Cost per side in basis points of traded value.
    ruin : float
        Fraction of initial equity under which the agent is ruined (liquidated, stops trading).
    calendar : str
        Exchange calendar of the sessions.
    periods_per_year : int
        Annualisation of the Sharpe ratio.
    """

    def __init__(
        self, prices, cost_bps: float = 10.0, ruin: float = 0.5, calendar: str = "XNYS", periods_per_year: int = 252
    ):
        if cost_bps < 0 or not 0 <= ruin < 1:
            raise ConfigError(f"cost_bps must be >= 0 and ruin in [0, 1); got cost_bps={cost_bps}, ruin={ruin}")
        self.prices = prices
        self.cost_bps = cost_bps
        self.ruin = ruin
        self.calendar = calendar
        self.periods_per_year = periods_per_year
        long = _prices_long(prices)
        self.prints_ = session_prints(calendar, long["date"].min(), long["date"].max())
        wide_close = long.pivot(index="date", columns="ticker", values="close").reindex(self.prints_.index)
        wide_open = long.pivot(index="date", columns="ticker", values="open").reindex(self.prints_.index)
        self.tickers_ = wide_close.columns
        self.has_open_ = wide_open.notna().any().to_numpy()
        # print timeline: open_0, close_0, open_1, close_1, ...; a missing open is carried from the last close
        n, k = len(self.prints_), len(self.tickers_)
        px = np.empty((2 * n, k))
        px[0::2] = wide_open.to_numpy()
        px[1::2] = wide_close.to_numpy()
        self.print_prices_ = pd.DataFrame(px).ffill().to_numpy()

    def _execution_prints(self, actions: pd.DataFrame) -> np.ndarray:
        """Row of the print timeline where each action executes (-1: none after it)."""
        t = actions["ticker"].to_numpy()
        col = self.tickers_.get_indexer(t)
        use_opens = self.has_open_[col]
        entries = align_to_prints(actions["decided_at"], self.prints_, use_opens=use_opens)
        pos = entries["entry_pos"].to_numpy()
        kind = (entries["entry_kind"] == "close").to_numpy().astype(int)
        return np.where(pos >= 0, 2 * pos + kind, -1)

    def _validate(self, actions: pd.DataFrame) -> pd.DataFrame:
        if not isinstance(actions, pd.DataFrame):
            raise DataContractError(
                f"actions must be a DataFrame with columns decided_at, ticker, weight, got {type(actions).__name__} "
                "(pass pd.DataFrame(records) for a list of dicts)"
            )
        require_columns(actions, ("decided_at", "ticker", "weight"), what="actions")
        acts = actions.reset_index(drop=True).copy()
        try:
            acts["decided_at"] = pd.to_datetime(acts["decided_at"], utc=False)
        except (ValueError, TypeError) as err:
            raise DataContractError(f"unparseable time: {err}", column="decided_at") from None
        if acts["decided_at"].dt.tz is None:
            raise DataContractError("decision times must be time-zone aware", column="decided_at")
        acts["decided_at"] = acts["decided_at"].dt.tz_convert("UTC")
        unknown = sorted(set(acts["ticker"]) - set(self.tickers_))
        if unknown:
            raise DataContractError(f"unknown ticker(s) {', '.join(map(str, unknown[:5]))}", column="ticker")
        weights = pd.to_numeric(acts["weight"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        if not np.isfinite(weights).all():
            bad = int(np.flatnonzero(~np.isfinite(weights))[0])
            raise DataContractError("weight is not a finite number", row=bad, column="weight")
        return acts

    def score(self, actions: pd.DataFrame, end: object | None = None) -> FitnessRecord:
        """Trade ``actions`` (decided_at, ticker, weight) and return the fitness record.

        The scored window runs from the session of the first execution to ``end`` (default: the last session
        with prices). Daily returns are close-to-close equity changes.
        """
        acts = self._validate(actions)
        acts["exec"] = self._execution_prints(acts)
        acts = acts[acts["exec"] >= 0].sort_values(["exec", "decided_at"], kind="stable")
        if acts.empty:
            raise DataContractError(
                "no action can be traded: every decision is after the last price", column="decided_at"
            )
        last = 2 * len(self.prints_) - 1
        if end is not None:
            last = 2 * int(self.prints_.index.searchsorted(pd.Timestamp(end), side="right") - 1) + 1
        first = int(acts["exec"].iloc[0])
        equity_path, costs, traded, alive_until = self._simulate(acts, first, last)
        closes = equity_path[(np.arange(first, last + 1) % 2) == 1]
        before = np.concatenate([[INITIAL_EQUITY], closes[:-1]])
        daily = np.nan_to_num((closes - before) / before)
        sd = daily.std(ddof=1) if len(daily) > 1 else 0.0
        sharpe = float(daily.mean() / sd * np.sqrt(self.periods_per_year)) if sd > 0 else 0.0
        n_sessions = len(closes)
        tstat = newey_west_tstat(daily)[1] if n_sessions > 2 and sd > 0 else 0.0
        self.daily_ = pd.Series(daily, index=self.prints_.index[first // 2 : last // 2 + 1], name="return")
        return FitnessRecord(
            net_return=float(closes[-1] / INITIAL_EQUITY - 1),
            sharpe=sharpe,
            max_drawdown=float(max_drawdown(pd.Series(daily))),
            turnover=float(traded / max(n_sessions, 1)),
            nw_tstat=float(tstat),
            sessions_alive=int(alive_until),
            n_sessions=n_sessions,
            survived=bool(alive_until == n_sessions),  # ruin is the only way to stop before the end
            costs_paid=float(costs),
            final_equity=float(closes[-1]),
        )

    def _simulate(self, acts: pd.DataFrame, first: int, last: int) -> tuple[np.ndarray, float, float, int]:
        """Walk the print timeline; returns equity at each print, costs, traded value / equity, sessions alive.

        Sessions alive is the number of closes in the window unless the agent was ruined first.
        """
        px = self.print_prices_
        shares = np.zeros(len(self.tickers_))
        cash, costs, traded = INITIAL_EQUITY, 0.0, 0.0
        rate = self.cost_bps / 1e4
        cols = self.tickers_.get_indexer(acts["ticker"])
        by_print: dict[int, list[tuple[int, float]]] = {}
        for p, c, w in zip(acts["exec"].to_numpy(), cols, acts["weight"].to_numpy(float), strict=True):
            by_print.setdefault(int(p), []).append((int(c), w))
        path = np.empty(last - first + 1)
        alive_until = (last - first) // 2 + 1
        dead = False
        for i, p in enumerate(range(first, last + 1)):
            price = np.nan_to_num(px[p])
            equity = cash + shares @ price
            if not dead and p in by_print:
                target = shares.copy()
                for c, w in by_print[p]:  # the latest decision per ticker wins
                    target[c] = w * equity / price[c] if price[c] > 0 else 0.0
                value = np.abs(target - shares) @ price
                cash -= (target - shares) @ price + rate * value
                costs += rate * value
                traded += value / equity if equity > 0 else 0.0
                shares = target
                equity = cash + shares @ price
            if not dead and equity < self.ruin * INITIAL_EQUITY:
                dead = True
                alive_until = i // 2
                value = np.abs(shares) @ price
                cash += shares @ price - rate * value
                costs += rate * value
                shares[:] = 0.0
                equity = cash
            path[i] = equity
        return path, costs, traded, alive_until
