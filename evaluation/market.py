"""Prices around the test window, for the event study and the IC decay at horizons the pairs do not carry.

The prices are the panel the labels were computed from (``prices.parquet`` of the pairs folder), else the
price source the pairs manifest names (older pairs folders); the calendar and benchmark are the manifest's.
Labels at further horizons come from the pair builder's own functions (:func:`data_pipelines.labels.forward_labels`
on the same print sequence), so a label here is the label the pairs would have had. Without prices the report
leaves the event study out and the IC decay uses the horizons the pairs have.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_pipelines.errors import NewsalphaError

log = logging.getLogger(__name__)

DECAY_HORIZONS = (1, 2, 3, 5, 10, 20)


@dataclass
class Market:
    """Dense prices on the calendar's print sequence.

    Attributes
    ----------
    panel : data_pipelines.labels.PricePanel
        Opens and closes per session and ticker.
    prints : DataFrame
        Prices on the print sequence (row ``2 s`` the open of session ``s``, ``2 s + 1`` its close), one
        column per ticker: what :func:`evaluation.tearsheet.event_study` reads.
    benchmark : str or None
        The benchmark ticker of the pairs, where it has prices.
    """

    panel: Any
    prints: pd.DataFrame
    benchmark: str | None

    def print_pos(self, session: pd.Series, entry_kind: pd.Series) -> np.ndarray:
        """Row of :attr:`prints` of each entry print (-1 where the session is not in the panel)."""
        s = self.panel.sessions.get_indexer(pd.DatetimeIndex(pd.to_datetime(session)).as_unit("ns"))
        return np.where(s >= 0, 2 * s + (entry_kind.astype(str).to_numpy() == "close"), -1)


def _source_prices(manifest: dict[str, Any], ask: list[str], start: pd.Timestamp, end: pd.Timestamp):
    """Prices from the source the pairs manifest names (paths relative to the pairs config), or ``None``."""
    from data_pipelines.prices.sources import price_source_from_config

    source_cfg = (manifest.get("config") or {}).get("prices")
    config_file = (manifest.get("config_file") or {}).get("path")
    if not isinstance(source_cfg, dict) or not config_file:
        return None
    source = price_source_from_config(source_cfg, Path(config_file).parent)
    return source.load(ask, start - pd.Timedelta(days=400), end + pd.Timedelta(days=60))


def load_market(
    manifest: dict[str, Any], pairs_file: str | None, tickers: list[str], start: pd.Timestamp, end: pd.Timestamp
) -> Market | None:
    """Prices of ``tickers`` and the benchmark around ``[start, end]`` (see the module docstring); ``None`` if none."""
    from data_pipelines.calendar import session_prints
    from data_pipelines.contracts import PRICES_FILE
    from data_pipelines.labels import price_panel
    from evaluation.rundata import market_facts

    facts = market_facts(manifest)
    benchmark = facts.get("benchmark")
    ask = sorted({*map(str, tickers), *([benchmark] if benchmark else [])})
    beside = Path(pairs_file).parent / PRICES_FILE if pairs_file else None
    try:
        if beside is not None and beside.is_file():
            prices = pd.read_parquet(beside)
            prices = prices[prices["ticker"].isin(ask)]
        else:
            prices = _source_prices(manifest, ask, start, end)
        if prices is None or prices.empty:
            log.info("no prices beside the pairs or in their manifest: no event study")
            return None
        prints = session_prints(facts.get("calendar") or "XNYS", prices["date"].min(), prices["date"].max())
        panel = price_panel(prices, prints)
    except (NewsalphaError, OSError) as err:
        log.warning("prices not readable for the event study (%s)", err)
        return None
    inter = np.empty((2 * len(panel.sessions), len(panel.tickers)))
    inter[0::2], inter[1::2] = panel.open, panel.close
    frame = pd.DataFrame(inter, columns=panel.tickers)
    return Market(panel, frame, benchmark if benchmark in panel.tickers else None)


def horizon_labels(
    articles: pd.DataFrame, market: Market, kind: str, horizons: tuple[int, ...] = DECAY_HORIZONS
) -> dict[int, np.ndarray]:
    """Labels of ``kind`` (``ret``/``exret``/``abret``) at each horizon for every article, from the pair builder.

    Returns
    -------
    dict
        Horizon -> realised label per article (NaN where a price is missing or the exit lies past the data).
    """
    from data_pipelines.labels import forward_labels

    pos = market.panel.sessions.get_indexer(pd.DatetimeIndex(pd.to_datetime(articles["session"])).as_unit("ns"))
    entries = pd.DataFrame(
        {"ticker": articles["ticker"].astype(str).to_numpy(), "entry_pos": pos, "entry_kind": articles["entry_kind"]}
    )
    bench = market.benchmark if kind != "ret" else None
    if kind != "ret" and bench is None:
        return {}
    labels = forward_labels(entries, market.panel, horizons=horizons, benchmark=bench)
    # a flagged row (e.g. its 20-session exit lies past the data) keeps the labels that could be computed
    return {h: labels[f"{kind}_h{h}"].to_numpy(float) for h in horizons}
