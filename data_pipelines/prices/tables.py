"""Tables into the long price contract: ticker checks, date parsing, validation, local files.

The shared machinery behind every price source (see :mod:`data_pipelines.prices.sources` for the contract and
the public entry points). Row numbers in error messages count data rows from 1 (the header not counted).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_pipelines.errors import ConfigError, DataContractError, PriceSourceError

log = logging.getLogger(__name__)

DateLike = str | dt.date | pd.Timestamp | None
TICKER_PATTERN = re.compile(r"[A-Za-z0-9.\-^=_]{1,20}")


def validate_ticker(ticker: str, *, file: str | None = None, row: int | None = None, column: str | None = None) -> str:
    """Return ``ticker`` stripped of surrounding blanks if it is a safe ticker symbol, else raise.

    Allowed: 1 to 20 of ``A-Z a-z 0-9 . - ^ = _`` and not only dots, so a ticker can name a cache file
    that never leaves its folder (no path separators, no ``..``, no NUL).

    Raises
    ------
    DataContractError
        Naming the ticker (and ``file``/``row``/``column`` when given).
    """
    text = ticker.strip() if isinstance(ticker, str) else ticker
    if not isinstance(text, str) or not TICKER_PATTERN.fullmatch(text) or set(text) == {"."}:
        raise DataContractError(
            f"invalid ticker {ticker!r}: use 1-20 of the characters A-Z a-z 0-9 . - ^ = _",
            file=file,
            row=row,
            column=column,
        )
    return text


def to_day(value: DateLike, *, name: str = "date") -> pd.Timestamp | None:
    """``value`` as a naive midnight Timestamp (None stays None); ConfigError when it is not a date."""
    if value is None:
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{name} {value!r} is not a date") from err
    if ts is pd.NaT:
        raise ConfigError(f"{name} {value!r} is not a date")
    return ts.tz_localize(None).normalize() if ts.tzinfo else ts.normalize()


# --------------------------------------------------------------------------- normalising and validating


def _first_bad(frame: pd.DataFrame, mask: np.ndarray | pd.Series, what: str, *, file: str, column: str) -> None:
    """Raise one DataContractError for the first row in ``mask`` (and say how many there are)."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return
    first = int(np.flatnonzero(mask)[0])
    more = f" ({int(mask.sum())} such rows)" if mask.sum() > 1 else ""
    row = int(frame["_row"].iloc[first])
    raise DataContractError(f"{what}{more}", file=file, row=row, column=column)


def _parse_dates(values: pd.Series, frame: pd.DataFrame, *, file: str, column: str, fmt: str | None) -> pd.Series:
    """Session dates as naive midnight datetime64[ns]; aware stamps keep their own local date."""
    parsed = values
    if not pd.api.types.is_datetime64_any_dtype(values):
        try:
            parsed = pd.to_datetime(values, format=fmt, errors="coerce")
        except (ValueError, TypeError):  # mixed UTC offsets: read them all in UTC
            parsed = pd.to_datetime(values, format=fmt, errors="coerce", utc=True)
    if not pd.api.types.is_datetime64_any_dtype(parsed):
        parsed = pd.to_datetime(values, format=fmt, errors="coerce", utc=True)
    bad = parsed.isna().to_numpy()
    if bad.any():
        value = values.iloc[int(np.flatnonzero(bad)[0])]
        _first_bad(frame, bad, f"unparseable date {value!r}", file=file, column=column)
    if parsed.dt.tz is not None:
        parsed = parsed.dt.tz_localize(None)
    return parsed.dt.normalize().astype("datetime64[ns]")


def _numbers(table: pd.DataFrame, column: str, *, file: str, label: str) -> pd.Series:
    """Column ``column`` as float64; a non-empty cell that is not a number raises."""
    raw = table[column]
    values = pd.to_numeric(raw, errors="coerce").astype("float64")
    bad = (values.isna() & raw.notna()).to_numpy()
    if bad.any():
        _first_bad(table, bad, f"{label} {raw[bad].iloc[0]!r} is not a number", file=file, column=column)
    return values


def finish_prices(prices: pd.DataFrame, *, file: str) -> pd.DataFrame:
    """Validate a long frame (date, ticker, close, open?) and return it in the price contract.

    Parameters
    ----------
    prices
        Long prices. Dates may be text or datetimes (aware ones keep their local date); an optional
        ``_row`` column holds each row's number in the source for messages (default: 1, 2, ...), and
        ``prices.attrs["columns"]`` may map date/ticker/open/close to the source's column names.
    file
        What to name in error messages (a path or a dataset name).

    Raises
    ------
    DataContractError
        The first bad row (and how many there are): a missing or invalid ticker, an unparseable date, a
        close that is missing, non-positive or not finite, an open that is non-positive or infinite (a
        missing open is a gap), or a duplicated (date, ticker).
    """
    cols = prices.attrs.get("columns") or {}
    if "_row" not in prices:
        prices = prices.assign(_row=np.arange(1, len(prices) + 1))
    codes, names = _ticker_codes(prices, file=file, column=cols.get("ticker") or "ticker")
    dates = _parse_dates(prices["date"], prices, file=file, column=cols.get("date") or "date", fmt=None)
    out = {"date": dates.to_numpy()}
    for name in ("open", "close"):
        if name not in prices:
            continue
        values = _numbers(prices, name, file=file, label=name).to_numpy()
        bad = np.isinf(values) | (values <= 0)
        if name == "close":  # a missing open is a gap at that print; a row without a close is no price at all
            bad |= np.isnan(values)
        shown = values[bad][0] if bad.any() else None
        what = f"{name} must be a finite positive price, got {shown}"
        _first_bad(prices, bad, what, file=file, column=cols.get(name) or name)
        out[name] = values
    if "open" in out and np.isnan(out["open"]).all():
        del out["open"]
    # names are sorted, so sorting by (code, date) sorts by (ticker, date); equal neighbours are duplicates
    order = np.lexsort((out["date"].view("i8"), codes))
    same = (codes[order][1:] == codes[order][:-1]) & (out["date"][order][1:] == out["date"][order][:-1])
    if same.any():
        dup = np.zeros(len(codes), dtype=bool)
        dup[order[1:][same]] = dup[order[:-1][same]] = True
        first = int(np.flatnonzero(dup)[0])
        what = f"duplicated (date, ticker) ({pd.Timestamp(out['date'][first]).date()}, {names[codes[first]]})"
        _first_bad(prices, dup, what, file=file, column=cols.get("date") or "date")
    frame = pd.DataFrame({"date": out["date"][order], "ticker": pd.array(names, dtype="str")[codes[order]]})
    for name in ("open", "close"):
        if name in out:
            frame[name] = out[name][order]
    return frame


def _ticker_codes(prices: pd.DataFrame, *, file: str, column: str) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of each row's ticker into a sorted array of validated names (blanks stripped)."""
    raw_codes, uniques = pd.factorize(prices["ticker"])
    _first_bad(prices, raw_codes < 0, "missing ticker", file=file, column=column)
    stripped = np.array([str(u).strip() for u in uniques], dtype=object)
    for i, t in enumerate(stripped):
        if not TICKER_PATTERN.fullmatch(t) or set(t) == {"."}:
            row = int(prices["_row"].iloc[int(np.flatnonzero(raw_codes == i)[0])])
            validate_ticker(uniques[i] if isinstance(uniques[i], str) else t, file=file, row=row, column=column)
    names, inverse = np.unique(stripped.astype(str), return_inverse=True)
    return inverse[raw_codes].astype(np.int64), names


def _find_column(table: pd.DataFrame, name: str | None, *, file: str, required: bool, what: str) -> str | None:
    """The column called ``name`` (exact, else the one case-insensitive match); None when optional and absent."""
    if name is None:
        return None
    if name in table.columns:
        return name
    matches = [c for c in table.columns if str(c).lower() == name.lower()]
    if len(matches) == 1:
        return matches[0]
    if required:
        have = ", ".join(str(c) for c in table.columns if c != "_row")
        raise DataContractError(f"{what} column {name!r} not found (has: {have})", file=file, column=name)
    return None


def long_from_table(
    table: pd.DataFrame,
    *,
    file: str,
    date_column: str = "date",
    ticker_column: str | None = "ticker",
    close_column: str = "close",
    open_column: str | None = "open",
    adj_close_column: str | None = None,
    date_format: str | None = None,
    ticker: str | None = None,
) -> pd.DataFrame:
    """Long prices from a long table; with ``adj_close_column`` the open is scaled by adj_close / close.

    ``ticker`` names the single asset of a table without a ticker column.
    """
    if table.empty:
        raise DataContractError("no price rows", file=file)
    table = table.reset_index(drop=True).assign(_row=np.arange(1, len(table) + 1))
    dcol = _find_column(table, date_column, file=file, required=True, what="date")
    tcol = None if ticker is not None else _find_column(table, ticker_column, file=file, required=True, what="ticker")
    acol = _find_column(table, adj_close_column, file=file, required=True, what="adjusted close")
    ocol = _find_column(table, open_column, file=file, required=False, what="open")
    ccol = _find_column(table, close_column, file=file, required=acol is None or ocol is not None, what="close")
    out = pd.DataFrame({"_row": table["_row"]})
    out["date"] = _parse_dates(table[dcol], table, file=file, column=dcol, fmt=date_format)
    out["ticker"] = ticker if ticker is not None else table[tcol].astype(str)
    close = _numbers(table, ccol, file=file, label="close") if ccol is not None else None
    out["close"] = close
    if acol is not None:
        out["close"] = _numbers(table, acol, file=file, label="adjusted close")
    if ocol is not None:
        open_ = _numbers(table, ocol, file=file, label="open")
        out["open"] = open_ * (out["close"] / close) if acol is not None else open_
    out.attrs["columns"] = {"date": dcol, "ticker": tcol or "ticker", "close": acol or ccol, "open": ocol}
    return out


def wide_from_table(table: pd.DataFrame, *, file: str, date_column: str = "date", date_format: str | None = None):
    """Long prices from a wide table: a date column and one close column per ticker (empty cell = no price)."""
    if table.empty:
        raise DataContractError("no price rows", file=file)
    table = table.reset_index(drop=True).assign(_row=np.arange(1, len(table) + 1))
    dcol = _find_column(table, date_column, file=file, required=True, what="date")
    tickers = [c for c in table.columns if c not in (dcol, "_row")]
    if not tickers:
        raise DataContractError("a wide price file needs one close column per ticker", file=file)
    for name in tickers:
        validate_ticker(str(name), file=file, column=str(name))
    dates = _parse_dates(table[dcol], table, file=file, column=dcol, fmt=date_format)
    parts = []
    for name in tickers:
        close = _numbers(table, name, file=file, label="close")
        keep = close.notna().to_numpy()
        parts.append(
            pd.DataFrame({"_row": table["_row"][keep], "date": dates[keep], "ticker": str(name), "close": close[keep]})
        )
    out = pd.concat(parts, ignore_index=True)
    out.attrs["columns"] = {"date": dcol, "ticker": "ticker", "close": "close"}
    return out


def select_prices(prices: pd.DataFrame, tickers: list[str] | None, start: DateLike, end: DateLike, *, name: str):
    """Rows of ``tickers`` between ``start`` and ``end`` (inclusive); unknown tickers -> PriceSourceError."""
    lo, hi = to_day(start, name="start"), to_day(end, name="end")
    out = prices
    if tickers is not None:
        wanted = list(dict.fromkeys(validate_ticker(t) for t in tickers))
        unknown = sorted(set(wanted) - set(prices["ticker"].unique()))
        if unknown:
            raise PriceSourceError(f"{name}: unknown ticker(s) {', '.join(unknown)}")
        out = out[out["ticker"].isin(wanted)]
    if lo is not None:
        out = out[out["date"] >= lo]
    if hi is not None:
        out = out[out["date"] <= hi]
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------- sources held in memory


class _TableSource:
    """A source read whole once; ``prices_`` holds its validated long frame after the first load."""

    name = "prices"

    def _read(self) -> pd.DataFrame:
        raise NotImplementedError

    def _prices(self) -> pd.DataFrame:
        if getattr(self, "prices_", None) is None:
            self.prices_ = self._read()
            log.debug("%s: %d price rows, %d tickers", self.name, len(self.prices_), self.prices_["ticker"].nunique())
        return self.prices_

    def available_tickers(self) -> list[str]:
        """Every ticker this source has, sorted."""
        return sorted(self._prices()["ticker"].unique())

    def load(self, tickers: list[str] | None = None, start: DateLike = None, end: DateLike = None) -> pd.DataFrame:
        """Prices of ``tickers`` (None: all) from ``start`` to ``end`` inclusive, in the long contract."""
        return select_prices(self._prices(), tickers, start, end, name=self.name)

    def describe(self) -> dict[str, Any]:
        """What to record in a manifest about this source."""
        return {"kind": type(self).__name__}


def read_table(path: Path, *, text_column: str | None = None) -> pd.DataFrame:
    """A CSV (maybe compressed) or Parquet file; ``text_column`` is read as text (tickers like ``0700``)."""
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        header = pd.read_csv(path, nrows=0).columns
        match = [c for c in header if text_column is not None and c.lower() == text_column.lower()]
        return pd.read_csv(path, dtype={c: str for c in match})
    except UnicodeDecodeError as err:
        raise DataContractError(f"not UTF-8 text ({err.reason} at byte {err.start})", file=str(path)) from err
    except pd.errors.EmptyDataError as err:
        raise DataContractError("empty file", file=str(path)) from err
    except (pd.errors.ParserError, ValueError, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataContractError(f"cannot read prices: {first}", file=str(path)) from err


class LocalPriceFile(_TableSource):
    """Prices from a CSV or Parquet file, long (date, ticker, open?, close) or wide (date + a close per ticker).

    Parameters
    ----------
    path
        The file (``.csv``, ``.csv.gz``, ``.parquet``).
    layout
        ``"long"``, ``"wide"`` or ``"auto"`` (long when the ticker column exists).
    date_column, ticker_column, close_column, open_column
        Column names (matched exactly, else case-insensitively); a missing open column means no opens.
    adj_close_column
        An adjusted close next to raw open/close: the close becomes it and the open is scaled by adj/close.
    date_format
        A ``strftime`` format such as ``"%m/%d/%Y"``; None lets pandas infer it. Rows may come in any order.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        layout: str = "auto",
        date_column: str = "date",
        ticker_column: str = "ticker",
        close_column: str = "close",
        open_column: str | None = "open",
        adj_close_column: str | None = None,
        date_format: str | None = None,
    ):
        if layout not in ("auto", "long", "wide"):
            raise ConfigError(f"price file layout must be auto, long or wide, not {layout!r}")
        self.path, self.layout, self.date_format = Path(path), layout, date_format
        self.date_column, self.ticker_column, self.close_column = date_column, ticker_column, close_column
        self.open_column, self.adj_close_column = open_column, adj_close_column
        self.name = str(self.path)

    def _read(self) -> pd.DataFrame:
        if not self.path.is_file():
            raise PriceSourceError(f"price file {self.path} not found")
        file = str(self.path)
        table = read_table(self.path, text_column=self.ticker_column if self.layout != "wide" else None)
        layout = self.layout
        if layout == "auto":
            found = _find_column(table, self.ticker_column, file=file, required=False, what="ticker")
            layout = "long" if found is not None else "wide"
        if layout == "wide":
            long = wide_from_table(table, file=file, date_column=self.date_column, date_format=self.date_format)
        else:
            long = long_from_table(
                table,
                file=file,
                date_column=self.date_column,
                ticker_column=self.ticker_column,
                close_column=self.close_column,
                open_column=self.open_column,
                adj_close_column=self.adj_close_column,
                date_format=self.date_format,
            )
        return finish_prices(long, file=file)

    def describe(self) -> dict[str, Any]:
        from data_pipelines.io import hash_file

        sha = hash_file(self.path) if self.path.is_file() else None
        return {"kind": "file", "path": str(self.path), "layout": self.layout, "sha256": sha}
