"""The pair builder: news and prices in, leakage-free (article, forward return) pairs out.

:func:`build_pairs` reads the news (:mod:`data_pipelines.news.ingest`), loads prices for the tickers it names plus
the benchmark, aligns each article to the first print strictly after publication + latency
(:mod:`data_pipelines.calendar`), labels it (:mod:`data_pipelines.labels`) and assigns a chronological split
with an embargo (:mod:`data_pipelines.splits`). Every input row ends either in ``pairs`` or in
``quarantine`` with a reason; the manifest's counts add up and say so. :func:`build_pairs_from_config` does
the same from a ``configs/pairs/*.yaml`` file and writes the run folder (pairs, quarantine, manifest).
"""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_pipelines.contracts import MANIFEST_FILE, PAIRS_FILE, QUARANTINE_FILE, label_columns
from data_pipelines.errors import ConfigError, DataContractError, PriceSourceError
from data_pipelines.io import hash_file, hash_frame, write_json_atomic, write_parquet_atomic
from data_pipelines.news.ingest import raise_first_bad_row, read_news
from data_pipelines.news.read import empty_quarantine, quarantine_rows

log = logging.getLogger(__name__)

LIBRARIES = ("pandas", "numpy", "pyarrow", "exchange_calendars", "statsmodels", "newsalpha")


@dataclass
class PairsResult:
    """What :func:`build_pairs` returns.

    Attributes
    ----------
    pairs : DataFrame
        The pairs contract (:mod:`data_pipelines.contracts`), plus ``published_after_close`` and ``source_row``.
    quarantine : DataFrame
        source_row, article_id, ticker, reason, detail, stage (``article`` | ``pair``).
    manifest : dict
        Inputs and their hashes, options, counts (which add up), library versions and a summary.
    """

    pairs: pd.DataFrame
    quarantine: pd.DataFrame
    manifest: dict = field(default_factory=dict)


def build_pairs(
    news: str | Path | pd.DataFrame,
    prices: str | Path | pd.DataFrame | Any,
    *,
    horizons: Sequence[int] = (1, 5),
    calendar: str = "XNYS",
    latency: str | pd.Timedelta = "0s",
    benchmark: str | None = "SPX",
    beta_window: int = 250,
    min_beta_obs: int | None = None,
    train_end: str | None = None,
    val_end: str | None = None,
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    embargo: int | None = None,
    walk_forward_folds: int = 0,
    columns: dict[str, str | None] | None = None,
    news_format: str | None = None,
    encoding: str = "utf-8",
    timezone: str = "America/New_York",
    default_ticker: str | None = None,
    ticker_delimiter: str | None = None,
    dedup_window: str | pd.Timedelta | None = "1D",
    on_bad_rows: str = "quarantine",
    base_dir: str | Path = ".",
) -> PairsResult:
    """Build (article, forward return) pairs.

    Parameters
    ----------
    news : path or DataFrame
        A news file (CSV, JSONL, Parquet; mapped with ``columns``) or a frame with article_id, published_at,
        text and optionally ticker.
    prices : path, DataFrame or PriceSource
        A price file (long or wide, read by ``LocalPriceFile``), a long frame (date, ticker, close, open
        optional) or any object with ``load(tickers, start, end)``.
    horizons, calendar, latency, benchmark, beta_window, min_beta_obs
        Label options (see :mod:`data_pipelines.labels`); ``min_beta_obs`` defaults to half the window.
    train_end, val_end, fractions, embargo, walk_forward_folds
        Split options (see :mod:`data_pipelines.splits`); ``embargo`` defaults to the longest horizon.
    columns, news_format, encoding, timezone, default_ticker, ticker_delimiter, dedup_window, on_bad_rows
        News options (see :func:`data_pipelines.news.ingest.read_news`).
    base_dir : path
        Folder that relative price paths are read from.

    Returns
    -------
    PairsResult
    """
    t0 = time.perf_counter()
    horizons = [int(h) for h in horizons]
    embargo = max(horizons) if embargo is None else int(embargo)
    if embargo < max(horizons):
        raise ConfigError(f"embargo ({embargo} sessions) must be at least the longest horizon ({max(horizons)})")
    nr = read_news(
        news,
        columns=columns,
        fmt=news_format,
        encoding=encoding,
        timezone=timezone,
        default_ticker=default_ticker,
        ticker_delimiter=ticker_delimiter,
        dedup_window=dedup_window,
        on_bad_rows=on_bad_rows,
    )
    if nr.news.empty:
        raise DataContractError(f"no usable news: all {nr.counts['input_rows']} rows quarantined ({_reasons(nr)})")
    tickers = nr.news["ticker"]
    px, px_info = load_prices(prices, tickers, benchmark, nr.news["published_at"], beta_window, max(horizons), base_dir)
    labelled, prints = label_news(nr.news, px, calendar, latency, horizons, benchmark, beta_window, min_beta_obs)
    bad = labelled["reason"].notna().to_numpy()
    q_label = quarantine_rows(labelled[bad], "", labelled.loc[bad, "detail"], "pair")
    q_label["reason"] = labelled.loc[bad, "reason"].to_numpy(dtype=object)
    if on_bad_rows == "error":
        news_file = None if isinstance(news, pd.DataFrame) else str(news)
        raise_first_bad_row(q_label[q_label["reason"] == "unknown_ticker"], news_file, columns or {"tickers": "ticker"})
    pairs = labelled[~bad].drop(columns=["reason", "detail"]).reset_index(drop=True)
    pairs = add_splits(pairs, prints.index, train_end, val_end, fractions, embargo, walk_forward_folds, max(horizons))
    pairs = order_columns(pairs, horizons)
    quarantine = pd.concat([q for q in (nr.quarantine, q_label) if len(q)] or [empty_quarantine()], ignore_index=True)
    quarantine = quarantine.sort_values(["source_row", "ticker"], kind="stable", na_position="first")
    options = dict(horizons=horizons, calendar=calendar, latency=str(pd.Timedelta(latency)), benchmark=benchmark)
    options |= dict(beta_window=beta_window, min_beta_obs=min_beta_obs, embargo=embargo, fractions=list(fractions))
    options |= dict(train_end=train_end, val_end=val_end, walk_forward_folds=walk_forward_folds, timezone=timezone)
    options |= dict(default_ticker=default_ticker, dedup_window=None if dedup_window is None else str(dedup_window))
    manifest = make_manifest(nr.counts, pairs, quarantine.reset_index(drop=True), options, news, px_info)
    manifest["seconds"] = round(time.perf_counter() - t0, 3)
    log.info("pairs: %d kept, %d quarantined in %.1f s", len(pairs), len(quarantine), manifest["seconds"])
    return PairsResult(pairs, quarantine.reset_index(drop=True), manifest)


def _reasons(nr: Any) -> str:
    counts = nr.quarantine["reason"].value_counts()
    return ", ".join(f"{k}: {v}" for k, v in counts.items()) or "none"


def load_prices(
    prices: str | Path | pd.DataFrame | Any,
    tickers: pd.Series,
    benchmark: str | None,
    published: pd.Series,
    beta_window: int,
    max_horizon: int,
    base_dir: str | Path = ".",
) -> tuple[pd.DataFrame, dict]:
    """Long prices for the news tickers the source has, plus the benchmark, over the range labels can touch.

    Tickers the source does not list are left out here and quarantined as ``unknown_ticker`` by the labels.
    The range runs from about ``beta_window`` sessions before the first article to ``max_horizon`` after the last.

    Raises
    ------
    PriceSourceError
        The benchmark is not in the prices, or the source fails.
    DataContractError
        A price frame breaks the contract (missing column, non-positive price, duplicate date and ticker).
    """
    from data_pipelines.prices.sources import finish_prices, price_source_from_config

    start = (published.min() - pd.Timedelta(days=int(beta_window * 1.5) + 30)).tz_localize(None).normalize()
    end = (published.max() + pd.Timedelta(days=int(max_horizon * 1.5) + 30)).tz_localize(None).normalize()
    wanted = list(pd.unique(tickers.to_numpy(dtype=object)))
    if benchmark is not None and benchmark not in wanted:
        wanted.append(benchmark)
    info: dict[str, Any] = {}
    if isinstance(prices, pd.DataFrame):
        from data_pipelines.contracts import PRICE_COLUMNS, require_columns

        require_columns(prices, PRICE_COLUMNS, what="prices")
        frame = finish_prices(prices.reset_index(drop=True).assign(_row=np.arange(len(prices))), file="prices")
        frame = frame[frame["ticker"].isin(wanted) & frame["date"].between(start, end)]
        info["source"] = {"kind": "dataframe"}
    else:
        if isinstance(prices, str | Path):
            info["path"], info["sha256"] = str(prices), hash_file(Path(base_dir) / prices)
            prices = price_source_from_config({"kind": "file", "path": str(prices)}, base_dir)
        listed = prices.available_tickers() if hasattr(prices, "available_tickers") else None
        ask = wanted if listed is None else [t for t in wanted if t in set(listed)]
        frame = _load_known(prices, ask, start, end, open_ended=listed is None, benchmark=benchmark)
        info["source"] = prices.describe() if hasattr(prices, "describe") else {"kind": type(prices).__name__}
    if benchmark is not None and not (frame["ticker"] == benchmark).any():
        raise PriceSourceError(f"benchmark {benchmark} has no prices from {start.date()} to {end.date()}")
    if frame.empty:
        raise PriceSourceError(f"no prices for any news ticker from {start.date()} to {end.date()}")
    info["frame_sha256"] = hash_frame(frame.reset_index(drop=True))
    info["tickers_asked"], info["tickers_found"] = len(wanted), int(frame["ticker"].nunique())
    return frame.reset_index(drop=True), info


def _load_known(source: Any, ask: list[str], start: Any, end: Any, *, open_ended: bool, benchmark: str | None):
    """Load ``ask``; an open-ended source (yfinance) that fails is retried ticker by ticker, skipping failures.

    A skipped ticker has no prices, so its pairs are quarantined as ``unknown_ticker`` instead of failing the run
    (a delisted symbol in a large news file is common). The benchmark must load.
    """
    empty = pd.DataFrame({"date": pd.Series(dtype="datetime64[ns]"), "ticker": pd.Series(dtype=object), "close": []})
    if not ask:
        return empty
    try:
        return source.load(ask, start, end)
    except PriceSourceError as err:
        if not open_ended or len(ask) == 1:
            raise
        log.warning("%s; loading the tickers one by one to quarantine those that fail", err)
    frames, failed = [], []
    for t in ask:
        try:
            frames.append(source.load([t], start, end))
        except PriceSourceError:
            if t == benchmark:
                raise
            failed.append(t)
    log.warning("no prices for %d ticker(s): %s", len(failed), ", ".join(failed[:20]))
    return pd.concat(frames, ignore_index=True) if frames else empty


def label_news(
    news: pd.DataFrame,
    prices: pd.DataFrame,
    calendar: str,
    latency: str | pd.Timedelta,
    horizons: list[int],
    benchmark: str | None,
    beta_window: int,
    min_beta_obs: int | None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Align each (article, ticker) to its entry print and label it; returns the rows and the session prints."""
    from data_pipelines.calendar import align_to_prints, session_prints
    from data_pipelines.labels import forward_labels, price_panel

    prints = session_prints(calendar, prices["date"].min(), prices["date"].max())
    panel = price_panel(prices, prints)
    entries = align_to_prints(
        news["published_at"], prints, latency=latency, use_opens=panel.opens_for(news["ticker"].to_numpy())
    )
    entries["ticker"] = news["ticker"].to_numpy()
    labels = forward_labels(
        entries, panel, horizons=horizons, benchmark=benchmark, beta_window=beta_window, min_beta_obs=min_beta_obs
    )
    out = pd.concat([news, entries[["session", "entry_at", "entry_kind"]], labels], axis=1)
    out["published_after_close"] = after_close(news["published_at"], prints, calendar)
    return out, prints


def after_close(published: pd.Series, prints: pd.DataFrame, calendar: str) -> np.ndarray:
    """Whether each time is on a session day (in the exchange's zone) at or after that session's close."""
    tz = exchange_timezone(calendar, prints)
    local_day = pd.DatetimeIndex(published.dt.tz_convert(tz).dt.tz_localize(None).dt.normalize()).as_unit("ns")
    close = pd.DatetimeIndex(prints["close_at"].reindex(local_day)).as_unit("ns")
    t = pd.DatetimeIndex(published).as_unit("ns").asi8
    return ~close.isna() & (t >= close.asi8)


def exchange_timezone(calendar: str, prints: pd.DataFrame) -> Any:
    """The calendar's time zone, read from its class (building a calendar costs ~0.5 s)."""
    import exchange_calendars as xcals

    try:
        from exchange_calendars.calendar_utils import global_calendar_dispatcher as dispatcher

        tz = dispatcher._calendar_factories[dispatcher.resolve_alias(calendar)].tz
        if tz is not None and not isinstance(tz, property):
            return tz
    except (AttributeError, KeyError, ImportError):  # a private API: fall back to the public, slower way
        pass
    return xcals.get_calendar(calendar, start=prints.index[0], end=prints.index[-1]).tz


def add_splits(
    pairs: pd.DataFrame,
    all_sessions: pd.DatetimeIndex,
    train_end: str | None,
    val_end: str | None,
    fractions: Sequence[float],
    embargo: int,
    folds: int,
    min_embargo: int = 0,
) -> pd.DataFrame:
    """Add ``split`` (train/val/test/embargo by entry session) and, with ``folds`` >= 1, a walk-forward ``fold``."""
    from data_pipelines.splits import assign_splits, walk_forward_folds

    pairs = pairs.copy()
    opts = dict(embargo=embargo, min_embargo=min_embargo)
    split = assign_splits(
        pairs["session"], all_sessions, train_end=train_end, val_end=val_end, fractions=fractions, **opts
    )
    pairs["split"] = np.asarray(split, dtype=object)
    if folds:
        pairs["fold"] = np.asarray(walk_forward_folds(pairs["session"], all_sessions, n_folds=folds, **opts))
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


def make_manifest(
    counts: dict, pairs: pd.DataFrame, quarantine: pd.DataFrame, options: dict, news: Any, prices_info: dict
) -> dict:
    """Inputs, options, counts per stage and reason (checked to add up), library versions and a summary."""
    by_stage = {
        stage: {
            str(k): int(v) for k, v in quarantine.loc[quarantine["stage"] == stage, "reason"].value_counts().items()
        }
        for stage in ("article", "pair")
    }
    full = dict(counts, kept=len(pairs), quarantined_articles=by_stage["article"], quarantined_pairs=by_stage["pair"])
    full["quarantined"] = {str(k): int(v) for k, v in quarantine["reason"].value_counts().items()}
    ok_articles = full["input_rows"] == full["articles"] + sum(by_stage["article"].values())
    ok_pairs = full["exploded_rows"] == full["kept"] + sum(by_stage["pair"].values())
    if not (ok_articles and ok_pairs):  # a bug, not a user mistake: never write a manifest that does not add up
        raise RuntimeError(f"pair counts do not add up: {full}")
    full["adds_up"] = True
    if isinstance(news, pd.DataFrame):
        news_info = {"kind": "dataframe", "frame_sha256": hash_frame(news.reset_index(drop=True))}
    else:
        news_info = {"kind": "file", "path": str(news), "sha256": hash_file(news)}
    return {
        "created_at": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
        "inputs": {"news": news_info, "prices": prices_info},
        "config": options,
        "counts": full,
        "summary": summarise(pairs),
        "libraries": library_versions(),
    }


def summarise(pairs: pd.DataFrame) -> dict:
    """Sessions, tickers, share published after the close, entry kinds, and counts per split (and fold)."""
    out = {
        "pairs": len(pairs),
        "articles": int(pairs["article_id"].nunique()),
        "tickers": int(pairs["ticker"].nunique()),
        "sessions": int(pairs["session"].nunique()),
        "first_session": None if pairs.empty else str(pairs["session"].min().date()),
        "last_session": None if pairs.empty else str(pairs["session"].max().date()),
        "share_after_close": round(float(pairs["published_after_close"].mean()), 4) if len(pairs) else None,
        "entry_kind": {str(k): int(v) for k, v in pairs["entry_kind"].value_counts().items()},
        "splits": {str(k): int(v) for k, v in pairs["split"].value_counts().sort_index().items()},
    }
    if "fold" in pairs:
        out["folds"] = {str(k): int(v) for k, v in pairs["fold"].value_counts().sort_index().items()}
    return out


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries the pairs depend on."""
    out = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def build_pairs_from_config(path: str | Path, out: str | Path | None = None) -> tuple[PairsResult, Path]:
    """Build pairs from a ``configs/pairs/*.yaml`` file and write the run folder.

    The folder (``out``, else the config's ``out``, else ``runs/pairs/<config name>``) gets ``pairs.parquet``,
    ``quarantine.parquet`` and then ``manifest.json``, each written atomically; the manifest is written last,
    so a folder with a manifest is complete. The manifest holds the resolved config and the output hashes.

    Returns
    -------
    (PairsResult, Path)
        The result and the run folder.
    """
    from data_pipelines.config import load_pairs_config
    from data_pipelines.prices.sources import price_source_from_config

    cfg = load_pairs_config(path)
    n = cfg.news
    if n.embedded is not None:
        from data_pipelines.embedded import load_embedded

        news: str | Path | pd.DataFrame = load_embedded(n.embedded)
        columns = None
    else:
        news, columns = Path(cfg.base_dir) / n.path, vars(n.columns).copy()
    try:
        source = price_source_from_config(cfg.prices, cfg.base_dir)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    result = build_pairs(news, source, columns=columns, **config_options(cfg))
    folder = Path(out or cfg.out or Path("runs") / "pairs" / Path(path).stem)
    result.manifest["config_file"] = {"path": str(path), "sha256": hash_file(path)}
    result.manifest["config"] = {**cfg.to_dict(), "resolved": result.manifest["config"]}
    if n.embedded is not None:
        result.manifest["inputs"]["news"]["embedded"] = n.embedded
    if cfg.prices.get("kind") == "file":  # the frame hash is always there; a price file also gets its own
        result.manifest["inputs"]["prices"]["sha256"] = hash_file(Path(cfg.base_dir) / cfg.prices["path"])
    (folder / MANIFEST_FILE).unlink(missing_ok=True)  # a folder never shows an old manifest beside new tables
    write_parquet_atomic(result.pairs, folder / PAIRS_FILE)
    write_parquet_atomic(result.quarantine, folder / QUARANTINE_FILE)
    result.manifest["outputs"] = {name: hash_file(folder / name) for name in (PAIRS_FILE, QUARANTINE_FILE)}
    write_json_atomic(result.manifest, folder / MANIFEST_FILE)
    log.info("wrote %s", folder)
    return result, folder


def config_options(cfg: Any) -> dict[str, Any]:
    """The :func:`build_pairs` keyword options a :class:`~data_pipelines.config.PairsConfig` sets (not the inputs)."""
    n, lab, sp = cfg.news, cfg.labels, cfg.splits
    return dict(
        horizons=lab.horizons,
        calendar=lab.calendar,
        latency=lab.latency,
        benchmark=lab.benchmark,
        beta_window=lab.beta_window,
        min_beta_obs=lab.min_beta_obs,
        train_end=sp.train_end,
        val_end=sp.val_end,
        fractions=sp.fractions,
        embargo=sp.embargo,
        walk_forward_folds=sp.walk_forward_folds,
        news_format=n.format,
        encoding=n.encoding,
        timezone=n.timezone,
        default_ticker=n.default_ticker,
        ticker_delimiter=n.ticker_delimiter,
        dedup_window=n.dedup_window,
        on_bad_rows=n.on_bad_rows,
    )
