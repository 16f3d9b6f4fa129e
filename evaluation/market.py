"""Prices around the test window, for the event study and the IC decay at horizons the pairs do not carry.

The price source, calendar and benchmark are those the pairs were built with, read from the pairs manifest
(``config.prices`` relative to the pairs config file), and labels at further horizons come from the pair
builder's own functions (:func:`data_pipelines.labels.forward_labels` on the same print sequence), so a label
here is the label the pairs would have had. Without a readable source (yfinance not cached, a DataFrame passed
through the API) the report leaves the event study out and the IC decay uses the horizons the pairs have.
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


def load_market(manifest: dict[str, Any], tickers: list[str], start: pd.Timestamp, end: pd.Timestamp) -> Market | None:
    """Prices of ``tickers`` and the benchmark, ``start - 400 days`` to ``end + 60 days`` (``None`` if unreadable)."""
    from data_pipelines.calendar import session_prints
    from data_pipelines.labels import price_panel
    from data_pipelines.prices.sources import price_source_from_config

    cfg = manifest.get("config") or {}
    source_cfg, config_file = cfg.get("prices"), (manifest.get("config_file") or {}).get("path")
    if not isinstance(source_cfg, dict) or not config_file:
        log.info("no price source in the pairs manifest: no event study")
        return None
    labels = cfg.get("labels") or {}
    benchmark = labels.get("benchmark")
    ask = sorted({*map(str, tickers), *([benchmark] if benchmark else [])})
    try:
        source = price_source_from_config(source_cfg, Path(config_file).parent)
        prices = source.load(ask, start - pd.Timedelta(days=400), end + pd.Timedelta(days=60))
        prints = session_prints(labels.get("calendar") or "XNYS", prices["date"].min(), prices["date"].max())
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
