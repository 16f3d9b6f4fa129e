"""yfinance prices with an on-disk Parquet cache, one file per ticker, usable offline once fetched.

Each cache file ``<cache_dir>/<TICKER>.parquet`` holds the long contract for one ticker (date, ticker,
open, close; adjusted) and, in its metadata, the span it covers: ``start`` (None = from the first
trade) and ``through`` (the last day asked for, never later than the day before the fetch). A request
the cache covers is served from disk without the network. Otherwise the ticker is downloaded again over
the union of the cached and requested spans and its file replaced whole (adjusted prices change when a
dividend is paid, so old and new series are never mixed). With ``offline=True`` only the cache is read.
A failed download is a :class:`PriceSourceError` naming the tickers.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_pipelines.errors import DataContractError, PriceSourceError
from data_pipelines.io import write_parquet_atomic
from data_pipelines.prices.tables import DateLike, finish_prices, select_prices, to_day, validate_ticker

log = logging.getLogger(__name__)

_META = "newsalpha_cache"


def _today() -> pd.Timestamp:
    """Today's UTC date (a function so tests can move the clock)."""
    return pd.Timestamp(dt.datetime.now(dt.UTC).date())


class YFinancePrices:
    """Daily adjusted prices from Yahoo Finance through ``yfinance.download``, cached on disk.

    Parameters
    ----------
    cache_dir
        Folder of the Parquet cache (created on the first fetch).
    session
        Passed to ``yfinance.download(session=...)`` (e.g. a curl_cffi session); None: yfinance's own.
    auto_adjust
        True: yfinance adjusts open and close. False: raw prices are fetched and adjusted here with
        ``Adj Close`` (close = Adj Close, open scaled by Adj Close / Close). Either way the output is adjusted.
    offline
        Read the cache only; a ticker that was never fetched is a PriceSourceError.
    tickers
        The tickers ``load(None)`` returns (None: every ticker in the cache).
    refresh
        Download again even when the cache covers the request (the cache is still used if that fails).
    """

    def __init__(
        self,
        cache_dir: str | Path = ".cache/prices",
        *,
        session: Any = None,
        auto_adjust: bool = True,
        offline: bool = False,
        tickers: list[str] | None = None,
        refresh: bool = False,
    ):
        self.cache_dir, self.session, self.auto_adjust = Path(cache_dir), session, auto_adjust
        self.offline, self.refresh = offline, refresh
        self.tickers = None if tickers is None else [validate_ticker(t) for t in tickers]
        self.name = "yfinance"

    # ------------------------------------------------------------------ cache

    def cache_path(self, ticker: str) -> Path:
        """The cache file of ``ticker``; raises if the name would resolve outside the cache folder."""
        name = f"{validate_ticker(ticker).upper()}.parquet"
        root = self.cache_dir.resolve()
        path = (root / name).resolve()
        if path.parent != root:
            raise PriceSourceError(f"cache file for ticker {ticker!r} would leave the cache folder {self.cache_dir}")
        return path

    def cached_tickers(self) -> list[str]:
        """Tickers with a cache file, sorted."""
        if not self.cache_dir.is_dir():
            return []
        return sorted(p.stem for p in self.cache_dir.glob("*.parquet"))

    def _read_cache(self, ticker: str) -> tuple[pd.DataFrame, dict] | None:
        path = self.cache_path(ticker)
        if not path.is_file():
            return None
        try:
            frame = pd.read_parquet(path)
            meta = json.loads(frame.attrs.get(_META, "null")) or {}
            frame.attrs = {}
        except (OSError, ValueError) as err:
            log.warning("unreadable price cache %s (%s); ignoring it", path, err)
            return None
        if meta.get("auto_adjust") != self.auto_adjust or not {"date", "close"} <= set(frame.columns):
            return None
        return frame, meta

    def _write_cache(self, ticker: str, frame: pd.DataFrame, start: pd.Timestamp | None, through: pd.Timestamp):
        out = frame.assign(ticker=ticker.upper())
        out.attrs = {
            _META: json.dumps({"start": _iso(start), "through": _iso(through), "auto_adjust": self.auto_adjust})
        }
        write_parquet_atomic(out, self.cache_path(ticker))

    # ------------------------------------------------------------------ loading

    def available_tickers(self) -> list[str] | None:
        """None: any Yahoo ticker may be asked for (an open-ended source)."""
        return None

    def load(self, tickers: list[str] | None = None, start: DateLike = None, end: DateLike = None) -> pd.DataFrame:
        """Adjusted daily prices of ``tickers`` from ``start`` to ``end`` (inclusive), in the long contract.

        The output names each ticker as it was asked for (Yahoo symbols are case-insensitive; the cache
        stores them upper-case).

        Raises
        ------
        PriceSourceError
            Offline and not cached, or a failed download (naming the tickers) without a covering cache.
        """
        wanted = tickers if tickers is not None else (self.tickers or self.cached_tickers())
        wanted = list(dict.fromkeys(validate_ticker(t) for t in wanted))
        if not wanted:
            raise PriceSourceError(f"yfinance: no tickers asked for and none in the cache {self.cache_dir}")
        lo, hi = to_day(start, name="start"), to_day(end, name="end")
        need_through = min(hi, _today() - pd.Timedelta(days=1)) if hi is not None else _today() - pd.Timedelta(days=1)
        frames, fetch = {}, []
        for t in wanted:
            cached = self._read_cache(t)
            covered = cached is not None and _covers(cached[1], lo, need_through)
            if cached is not None and (self.offline or (covered and not self.refresh)):
                if not covered:
                    log.warning("yfinance offline: cache of %s covers %s..%s only", t, *_span(cached[1]))
                frames[t] = cached[0]
            else:
                fetch.append(t)
        if fetch and self.offline:
            raise PriceSourceError(f"yfinance offline: no cached prices for {', '.join(fetch)} in {self.cache_dir}")
        if fetch:
            frames.update(self._fetch(fetch, lo, hi, need_through))
        parts = [frames[t].assign(ticker=t) for t in wanted]
        out = pd.concat(parts, ignore_index=True).assign(_row=lambda f: np.arange(1, len(f) + 1))
        out = finish_prices(out, file=f"yfinance cache {self.cache_dir}")
        return select_prices(out, None, lo, hi, name=self.name)

    def _fetch(self, tickers: list[str], lo, hi, need_through) -> dict[str, pd.DataFrame]:
        """Download ``tickers`` over the union of cached and asked spans, write their caches, return them."""
        cached = {t: self._read_cache(t) for t in tickers}
        starts = [lo] + [c[1].get("start") and pd.Timestamp(c[1]["start"]) for c in cached.values() if c]
        fetch_lo = None if any(s is None for s in starts) else min(starts)
        throughs = [need_through] + [pd.Timestamp(c[1]["through"]) for c in cached.values() if c]
        fetch_through = max(throughs)
        got, why = self._download(tickers, fetch_lo, fetch_through if hi is not None else None)
        out, failed = {}, []
        for t in tickers:
            if t in got:  # a bar after ``through`` may be today's, still trading: never cache a partial close
                got[t] = got[t][got[t]["date"] <= fetch_through].reset_index(drop=True)
                self._write_cache(t, got[t], fetch_lo, fetch_through)
                out[t] = got[t]
            elif cached[t] is not None and _covers(cached[t][1], lo, need_through):
                log.warning("yfinance download of %s failed (%s); using the cache", t, why)
                out[t] = cached[t][0]
            else:
                failed.append(t)
        if failed:
            hint = " (cached prices exist: pass offline=True to use them)" if any(cached[t] for t in failed) else ""
            raise PriceSourceError(f"yfinance download failed for {', '.join(failed)}: {why}{hint}")
        return out

    def _download(self, tickers: list[str], lo, through) -> tuple[dict[str, pd.DataFrame], str]:
        """Call ``yfinance.download`` once; per-ticker frames (date, open?, close) and why others failed."""
        import yfinance

        kwargs: dict[str, Any] = dict(auto_adjust=self.auto_adjust, actions=False, progress=False, group_by="column")
        if lo is None:
            kwargs["period"] = "max"
        else:
            kwargs["start"] = lo.strftime("%Y-%m-%d")
        if through is not None:  # yfinance's end is exclusive
            kwargs["end"] = (through + pd.Timedelta(days=1)).strftime("%Y-%m-%d")
        if self.session is not None:
            kwargs["session"] = self.session
        log.info("yfinance: downloading %s", ", ".join(tickers))
        try:
            raw = yfinance.download([t.upper() for t in tickers], **kwargs)
        except Exception as err:  # noqa: BLE001 - any network or service failure names the tickers
            return {}, f"{type(err).__name__}: {' '.join(str(err).split())}"[:200]
        got = {t: f for t in tickers if (f := frame_from_download(raw, t.upper(), self.auto_adjust)) is not None}
        return got, "no data returned (network unreachable, or unknown or delisted symbol)"


def frame_from_download(raw: pd.DataFrame | None, ticker: str, auto_adjust: bool) -> pd.DataFrame | None:
    """One ticker's adjusted (date, open, close) from what ``yfinance.download`` returned; None if absent.

    Handles multi-index columns in either order (``group_by="column"``: (Price, Ticker); ``"ticker"``:
    (Ticker, Price)) and flat columns (one ticker, ``multi_level_index=False``). Rows without a close
    (yfinance pads every ticker to the union of dates) are dropped; tz-aware dates keep their local date.
    """
    if raw is None or raw.empty:
        return None
    cols = raw.columns
    if isinstance(cols, pd.MultiIndex):
        level = next((i for i in range(cols.nlevels) if "Close" in cols.get_level_values(i)), None)
        tick_level = 1 - level if level is not None and cols.nlevels == 2 else None
        if tick_level is None or ticker not in cols.get_level_values(tick_level):
            return None
        sub = raw.xs(ticker, axis=1, level=tick_level)
    else:
        sub = raw
    if "Close" not in sub or (not auto_adjust and "Adj Close" not in sub):
        return None
    close = pd.to_numeric(sub["Adj Close" if not auto_adjust else "Close"], errors="coerce")
    frame = pd.DataFrame({"close": close.to_numpy(dtype="float64")})
    if "Open" in sub:
        scale = 1.0 if auto_adjust else close / pd.to_numeric(sub["Close"], errors="coerce")
        frame["open"] = (pd.to_numeric(sub["Open"], errors="coerce") * scale).to_numpy(dtype="float64")
    index = pd.DatetimeIndex(raw.index)
    index = index.tz_localize(None) if index.tz is not None else index
    frame.insert(0, "date", index.normalize().astype("datetime64[ns]"))
    frame = frame[frame["close"].notna()].reset_index(drop=True)
    if frame.empty:
        return None
    for name in [c for c in ("close", "open") if c in frame]:
        values = frame[name].to_numpy()
        bad = np.isinf(values) | (values <= 0)
        if bad.any():
            day = frame.loc[bad, "date"].iloc[0].date()
            raise DataContractError(
                f"non-positive or infinite {name} {values[bad][0]} on {day}", file=f"yfinance {ticker}"
            )
    return frame


def _iso(day: pd.Timestamp | None) -> str | None:
    return None if day is None else day.strftime("%Y-%m-%d")


def _span(meta: dict) -> tuple[str, str]:
    return meta.get("start") or "first trade", meta.get("through") or "?"


def _covers(meta: dict, lo: pd.Timestamp | None, through: pd.Timestamp) -> bool:
    """Whether a cache file's span covers the days ``lo`` (None: from the first trade) to ``through``."""
    start, until = meta.get("start"), meta.get("through")
    if until is None or pd.Timestamp(until) < through:
        return False
    return start is None or (lo is not None and pd.Timestamp(start) <= lo)
