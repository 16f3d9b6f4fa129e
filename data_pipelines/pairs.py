"""The pair builder: news and prices in, leakage-free (article, forward return) pairs out.

:func:`build_pairs` reads the news (:mod:`data_pipelines.news.ingest`), loads prices for the tickers it names plus
the benchmark (:mod:`data_pipelines.prices.load`), aligns each article to the first print strictly after
publication + latency (:mod:`data_pipelines.calendar`), labels it (:mod:`data_pipelines.labels`) and assigns a
chronological split with an embargo (:mod:`data_pipelines.splits`). Every input row ends either in ``pairs`` or in
``quarantine`` with a reason; the manifest's counts add up and say so (:mod:`data_pipelines.manifest`).
:func:`build_pairs_from_config` does the same from a ``configs/pairs/*.yaml`` file and writes the run folder
(:mod:`data_pipelines.pairs_folder`). Every option and default is a field of
:class:`~data_pipelines.config.PairsConfig`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import exchange_calendars as xcals
import exchange_calendars.calendar_utils as xcals_utils
import numpy as np
import pandas as pd

from data_pipelines.calendar import align_to_prints, session_prints
from data_pipelines.config import LabelsConfig, PairsConfig, SplitsConfig, load_pairs_config, validated
from data_pipelines.contracts import PAIRS_STAGE, PRICES_FILE, empty_quarantine, label_columns
from data_pipelines.embedded import load_embedded
from data_pipelines.errors import ConfigError, DataContractError
from data_pipelines.labels import MISSING_PREFIX, forward_labels, label_missing_counts
from data_pipelines.manifest import make_manifest
from data_pipelines.news.ingest import raise_first_bad_row, read_news
from data_pipelines.news.read import quarantine_rows
from data_pipelines.pairs_folder import write_pairs_folder
from data_pipelines.panel import PricePanel, panel_to_long, price_panel
from data_pipelines.prices.load import load_prices
from data_pipelines.prices.sources import price_source_from_config
from data_pipelines.splits import assign_splits, walk_forward_folds

log = logging.getLogger(__name__)

NewsInput = str | Path | pd.DataFrame


@dataclass
class PairsResult:
    """What :func:`build_pairs` returns.

    Attributes
    ----------
    pairs : DataFrame
        The pairs contract (:mod:`data_pipelines.contracts`), plus ``published_after_close`` and ``source_row``.
    quarantine : DataFrame
        The quarantine contract (stage ``news``: a whole record; ``pairs``: one (article, ticker) row).
    manifest : dict
        Inputs and their hashes, the resolved config, counts (which add up), labels, versions and a summary.
    config : PairsConfig
        The resolved config the pairs were built with.
    prices : DataFrame
        The price panel the labels were computed from, in the long contract (``prices.parquet`` of a pairs
        folder, see :mod:`data_pipelines.contracts`): every ticker of the pairs plus the benchmark.
    """

    pairs: pd.DataFrame
    quarantine: pd.DataFrame
    manifest: dict = field(default_factory=dict)
    config: PairsConfig = field(default_factory=PairsConfig)
    prices: pd.DataFrame = field(default_factory=pd.DataFrame)


def build_pairs(
    news: NewsInput | PairsConfig | None = None,
    prices: str | Path | pd.DataFrame | Any | None = None,
    *,
    config: PairsConfig | str | Path | None = None,
    **options: Any,
) -> PairsResult:
    """Build (article, forward return) pairs.

    Three ways to call it::

        build_pairs(PairsConfig(news=NewsConfig(path="news.csv"), prices={"kind": "file", "path": "px.csv"}))
        build_pairs(config="configs/pairs/tweets_sp500.yaml")
        build_pairs(news_df, prices_df, benchmark="MKT", horizons=[1, 5])   # options on the defaults

    Parameters
    ----------
    news : path, DataFrame or PairsConfig, optional
        A news file (CSV, JSONL, Parquet; mapped with ``news.columns``) or a frame (article_id, published_at,
        text, ticker optional); default: the config's ``news.path`` or ``news.embedded``. A PairsConfig here is
        taken as ``config``.
    prices : path, DataFrame or PriceSource, optional
        A price file, a long frame (date, ticker, close, open optional) or any object with
        ``load(tickers, start, end)``; default: the config's ``prices`` mapping.
    config : PairsConfig or path of a YAML file, optional
        Every option; default :class:`~data_pipelines.config.PairsConfig` (the one home of the defaults).
    **options
        Options to set by their name in any section of the config (``benchmark="MKT"``, ``fractions=...``).

    Raises
    ------
    ConfigError
        A bad option (all problems listed at once).
    DataContractError, PriceSourceError
        Unreadable or unusable inputs (naming the file, row and column where known).
    """
    t0 = time.perf_counter()
    if isinstance(news, PairsConfig):
        news, config = None, news
    cfg = resolve_config(config, options, news_given=news is not None)
    news = news_input(cfg) if news is None else news
    if prices is None:
        if not cfg.prices:
            raise ConfigError("no prices: pass prices= or set 'prices' in the config (e.g. {kind: file, path: ...})")
        prices = price_source_from_config(cfg.prices)
    nr = read_news(news, cfg.news)
    if nr.news.empty:
        raise DataContractError(f"no usable news: all {nr.counts['input_rows']} rows quarantined ({_reasons(nr)})")
    lab, sp = cfg.labels, cfg.splits
    horizons = sorted(lab.horizons)
    px, px_info = load_prices(
        prices, nr.news["ticker"], lab.benchmark, nr.news["published_at"], lab.beta_window, horizons[-1]
    )
    labelled, panel = label_news(nr.news, px, lab)
    bad = labelled["reason"].notna().to_numpy()
    q_label = quarantine_rows(labelled[bad], "", labelled.loc[bad, "detail"], PAIRS_STAGE)
    q_label["reason"] = labelled.loc[bad, "reason"].astype("string").to_numpy()
    if cfg.news.on_bad_rows == "error":
        news_file = None if isinstance(news, pd.DataFrame) else str(news)
        raise_first_bad_row(q_label[q_label["reason"] == "unknown_ticker"], news_file, nr.columns)
    kept = labelled[~bad]
    missing = label_missing_counts(kept)
    pairs = kept.drop(columns=["reason", "detail", *[c for c in kept if c.startswith(MISSING_PREFIX)]])
    pairs = add_splits(pairs.reset_index(drop=True), panel.sessions, sp, horizons[-1])
    pairs = order_columns(pairs, horizons)
    quarantine = pd.concat([q for q in (nr.quarantine, q_label) if len(q)] or [empty_quarantine()], ignore_index=True)
    quarantine = quarantine.sort_values(["source_row", "ticker"], kind="stable", na_position="first")
    quarantine = quarantine.reset_index(drop=True)
    manifest = make_manifest(nr.counts, pairs, quarantine, cfg, news, px_info)
    manifest["counts"]["labels_missing"] = {k: v for k, v in missing.items() if v}
    manifest["counts"]["benchmark_pairs"] = benchmark_pairs(pairs, lab.benchmark, horizons[0])
    used = panel_to_long(panel, [*pd.unique(pairs["ticker"]), *([lab.benchmark] if lab.benchmark else [])])
    manifest["prices"] = prices_section(used, lab)
    manifest["seconds"] = round(time.perf_counter() - t0, 3)
    log.info("pairs: %d kept, %d quarantined in %.1f s", len(pairs), len(quarantine), manifest["seconds"])
    return PairsResult(pairs, quarantine, manifest, cfg, used)


def benchmark_pairs(pairs: pd.DataFrame, benchmark: str | None, horizon: int) -> int:
    """How many pairs are of the benchmark itself (their excess and abnormal returns are zero); warns once if any."""
    n = 0 if benchmark is None else int((pairs["ticker"] == benchmark).sum())
    if n:
        log.warning(
            "%d of %d pairs are of the benchmark %s itself: their exret and abret are 0, train those on ret_h%d",
            n,
            len(pairs),
            benchmark,
            horizon,
        )
    return n


def resolve_config(config: PairsConfig | str | Path | None, options: dict[str, Any], news_given: bool) -> PairsConfig:
    """The config to build with: loaded (a path), with ``options`` applied, checked, and defaults resolved.

    Raises
    ------
    ConfigError
        Every problem with the options, at once.
    """
    if isinstance(config, str | Path):
        config = load_pairs_config(config)
    cfg = (config or PairsConfig()).with_options(**options)
    return validated(cfg, news_given=news_given, what="pairs config").resolved()


def news_input(cfg: PairsConfig) -> NewsInput:
    """The news the config names: its file path, or the embedded set as a frame."""
    if cfg.news.embedded is not None:
        return load_embedded(cfg.news.embedded)
    return Path(cfg.news.path)


def _reasons(nr: Any) -> str:
    """Counts per reason, and the first row's detail (what to fix)."""
    q = nr.quarantine
    counts = ", ".join(f"{k}: {v}" for k, v in q["reason"].value_counts().items()) or "none"
    if q.empty:
        return counts
    first = q.sort_values("source_row").iloc[0]
    return f"{counts}; row {first['source_row']}: {first['detail']}"


def prices_section(prices: pd.DataFrame, cfg: LabelsConfig) -> dict[str, Any]:
    """The manifest's description of ``prices.parquet``: what a reader needs to compute entry prints from it."""
    return {
        "file": PRICES_FILE,
        "calendar": cfg.calendar,
        "latency_seconds": pd.Timedelta(cfg.latency).total_seconds(),
        "benchmark": cfg.benchmark,
        "tickers": int(prices["ticker"].nunique()),
        "rows": len(prices),
        "first_date": None if prices.empty else str(prices["date"].min().date()),
        "last_date": None if prices.empty else str(prices["date"].max().date()),
    }


def label_news(news: pd.DataFrame, prices: pd.DataFrame, cfg: LabelsConfig) -> tuple[pd.DataFrame, PricePanel]:
    """Align each (article, ticker) to its entry print and label it; returns the rows and the price panel used."""
    prints = session_prints(cfg.calendar, prices["date"].min(), prices["date"].max())
    panel = price_panel(prices, prints)
    entries = align_to_prints(
        news["published_at"], prints, latency=cfg.latency, use_opens=panel.opens_for(news["ticker"].to_numpy())
    )
    entries["ticker"] = news["ticker"].to_numpy()
    labels = forward_labels(entries, panel, cfg)
    out = pd.concat([news, entries[["session", "entry_at", "entry_kind"]], labels], axis=1)
    out["published_after_close"] = after_close(news["published_at"], prints, cfg.calendar)
    return out, panel


def after_close(published: pd.Series, prints: pd.DataFrame, calendar: str) -> np.ndarray:
    """Whether each time is on a session day (in the exchange's zone) at or after that session's close."""
    tz = exchange_timezone(calendar, prints)
    local_day = pd.DatetimeIndex(published.dt.tz_convert(tz).dt.tz_localize(None).dt.normalize()).as_unit("ns")
    close = pd.DatetimeIndex(prints["close_at"].reindex(local_day)).as_unit("ns")
    t = pd.DatetimeIndex(published).as_unit("ns").asi8
    return ~close.isna() & (t >= close.asi8)


def exchange_timezone(calendar: str, prints: pd.DataFrame) -> Any:
    """The calendar's time zone, read from its class (building a calendar costs ~0.5 s)."""
    try:
        dispatcher = xcals_utils.global_calendar_dispatcher
        tz = dispatcher._calendar_factories[dispatcher.resolve_alias(calendar)].tz
        if tz is not None and not isinstance(tz, property):
            return tz
    except (AttributeError, KeyError):  # a private API: fall back to the public, slower way
        pass
    return xcals.get_calendar(calendar, start=prints.index[0], end=prints.index[-1]).tz


def add_splits(
    pairs: pd.DataFrame, all_sessions: pd.DatetimeIndex, cfg: SplitsConfig, min_embargo: int
) -> pd.DataFrame:
    """Add ``split`` (train/val/test/embargo by entry session) and, with walk-forward folds, a ``fold`` column."""
    pairs = pairs.copy()
    embargo = min_embargo if cfg.embargo is None else cfg.embargo
    opts = dict(embargo=embargo, min_embargo=min_embargo)
    split = assign_splits(
        pairs["session"], all_sessions, train_end=cfg.train_end, val_end=cfg.val_end, fractions=cfg.fractions, **opts
    )
    pairs["split"] = np.asarray(split, dtype=object)
    if cfg.walk_forward_folds:
        folds = walk_forward_folds(pairs["session"], all_sessions, n_folds=cfg.walk_forward_folds, **opts)
        pairs["fold"] = np.asarray(folds)
    return pairs


def order_columns(pairs: pd.DataFrame, horizons: list[int]) -> pd.DataFrame:
    """The pairs contract's column order, sorted by publication time, then input row, then ticker."""
    head = ["article_id", "ticker", "published_at", "published_after_close", "text", "session", "entry_at"]
    head.append("entry_kind")
    labels = [c for h in horizons for c in (*label_columns([h]), f"exit_at_h{h}") if c in pairs.columns]
    tail = [c for c in ("split", "fold", "source_row") if c in pairs.columns]
    ticker_rank = pd.factorize(pairs["ticker"], sort=True)[0]  # integer keys: a string sort of 1 M rows is slow
    stamps = pd.DatetimeIndex(pairs["published_at"]).asi8
    order = np.lexsort((ticker_rank, pairs["source_row"].to_numpy(), stamps))
    return pairs[head + labels + tail].iloc[order].reset_index(drop=True)


def build_pairs_from_config(
    config: str | Path | PairsConfig, out: str | Path | None = None, *, config_file: str | Path | None = None
) -> tuple[PairsResult, Path]:
    """Build pairs from a ``configs/pairs/*.yaml`` file (or a PairsConfig) and write the run folder.

    The folder is ``out``, else the config's ``out``, else ``runs/pairs/<config name>``; see
    :func:`data_pipelines.pairs_folder.write_pairs_folder` for what it holds (the manifest is written last).
    ``config_file``: the file a PairsConfig was read from (named and hashed in the manifest; default ``config``
    when it is a path).

    Returns
    -------
    (PairsResult, Path)
        The result and the run folder.
    """
    path = Path(config_file) if config_file is not None else None
    if not isinstance(config, PairsConfig):
        path = path or Path(config)
        config = load_pairs_config(config)
    result = build_pairs(config)
    folder = Path(out or result.config.out or Path("runs") / "pairs" / (path.stem if path else "pairs"))
    write_pairs_folder(result, folder, config_file=path)
    return result, folder
