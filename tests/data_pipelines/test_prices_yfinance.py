"""yfinance source with its Parquet cache, exercised offline with recorded responses (no network)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
import yfinance

from data_pipelines.errors import DataContractError, PriceSourceError
from data_pipelines.prices import yf as prices_yf
from data_pipelines.prices.sources import price_source_from_config
from data_pipelines.prices.yf import YFinancePrices, frame_from_download

RECORDED = Path(__file__).parent / "recorded"


def recorded(name: str) -> pd.DataFrame:
    return pd.read_csv(RECORDED / f"{name}.csv", header=[0, 1], index_col=0, parse_dates=True)


class FakeDownload:
    """Stands in for ``yfinance.download``: serves a recorded frame cut to start/end like yfinance does."""

    def __init__(self, frame: pd.DataFrame | None = None, error: Exception | None = None):
        self.frame, self.error, self.calls = frame, error, []

    def __call__(self, tickers, **kwargs):
        self.calls.append((list(tickers), kwargs))
        if self.error is not None:
            raise self.error
        frame = self.frame
        keep = [t for t in frame.columns.get_level_values(1).unique() if t in tickers]
        frame = frame.loc[:, frame.columns.get_level_values(1).isin(keep)]
        if "start" in kwargs:
            frame = frame[frame.index >= kwargs["start"]]
        if "end" in kwargs:
            frame = frame[frame.index < kwargs["end"]]  # yfinance's end is exclusive
        return frame.copy()


@pytest.fixture
def clock(monkeypatch):
    """Today is 2024-01-10 unless a test moves it."""
    monkeypatch.setattr(prices_yf, "_today", lambda: pd.Timestamp("2024-01-10"))


def patch(monkeypatch, fake: FakeDownload) -> FakeDownload:
    monkeypatch.setattr(yfinance, "download", fake)
    return fake


def test_fetch_writes_one_cache_file_per_ticker_then_works_offline(tmp_path, monkeypatch, clock):
    fake = patch(monkeypatch, FakeDownload(recorded("yf_download_AAPL_MSFT")))
    online = YFinancePrices(tmp_path / "cache").load(["MSFT", "AAPL"], start="2024-01-02", end="2024-01-08")
    assert sorted(os.listdir(tmp_path / "cache")) == ["AAPL.parquet", "MSFT.parquet"]
    assert fake.calls[0][1]["start"] == "2024-01-02" and fake.calls[0][1]["end"] == "2024-01-09"
    assert str(online["date"].dtype) == "datetime64[ns]"
    assert online.groupby("ticker").size().to_dict() == {"AAPL": 5, "MSFT": 4}  # MSFT's padded NaN row dropped
    first = online.iloc[0]
    assert (first["ticker"], first["open"], first["close"]) == ("AAPL", 186.033057, 184.532089)

    broken = patch(monkeypatch, FakeDownload(error=ConnectionError("no route to host")))
    offline = YFinancePrices(tmp_path / "cache", offline=True).load(["MSFT", "AAPL"], "2024-01-02", "2024-01-08")
    pd.testing.assert_frame_equal(offline, online)
    covered = YFinancePrices(tmp_path / "cache").load(["AAPL"], "2024-01-03", "2024-01-05")  # cache covers it
    assert broken.calls == [] and covered["date"].dt.day.tolist() == [3, 4, 5]


def test_offline_without_cache_names_the_tickers(tmp_path, monkeypatch, clock):
    fake = patch(monkeypatch, FakeDownload(recorded("yf_download_AAPL_MSFT")))
    with pytest.raises(PriceSourceError, match="offline: no cached prices for AAPL, IBM"):
        YFinancePrices(tmp_path, offline=True).load(["AAPL", "IBM"])
    assert fake.calls == []


def test_failed_download_is_one_line_naming_tickers(tmp_path, monkeypatch, clock):
    patch(monkeypatch, FakeDownload(error=ConnectionError("Could not resolve host:\n query2.finance.yahoo.com")))
    with pytest.raises(PriceSourceError) as err:
        YFinancePrices(tmp_path).load(["AAPL", "MSFT"], start="2024-01-02")
    text = str(err.value)
    assert text.startswith("yfinance download failed for AAPL, MSFT: ConnectionError: Could not resolve host")
    assert "\n" not in text and not (tmp_path / "AAPL.parquet").exists()


def test_partial_failure_names_only_the_missing_symbol(tmp_path, monkeypatch, clock):
    patch(monkeypatch, FakeDownload(recorded("yf_download_AAPL_ZZZZ_partial")))
    with pytest.raises(PriceSourceError, match=r"failed for ZZZZ: no data returned") as err:
        YFinancePrices(tmp_path, auto_adjust=False).load(["AAPL", "ZZZZ"], start="2024-01-02", end="2024-01-03")
    assert "AAPL" not in str(err.value)
    assert (tmp_path / "AAPL.parquet").exists() and not (tmp_path / "ZZZZ.parquet").exists()


def test_refresh_falls_back_to_a_complete_cache_but_not_an_incomplete_one(tmp_path, monkeypatch, clock):
    patch(monkeypatch, FakeDownload(recorded("yf_download_AAPL_MSFT")))
    first = YFinancePrices(tmp_path).load(["AAPL"], start="2024-01-03", end="2024-01-05")
    patch(monkeypatch, FakeDownload(error=TimeoutError("read timed out")))
    again = YFinancePrices(tmp_path, refresh=True).load(["AAPL"], start="2024-01-03", end="2024-01-05")
    pd.testing.assert_frame_equal(again, first)
    with pytest.raises(PriceSourceError, match="failed for AAPL: TimeoutError.*offline=True"):
        YFinancePrices(tmp_path).load(["AAPL"], start="2024-01-02", end="2024-01-05")  # starts before the cache


def test_wider_request_refetches_the_union_and_replaces_the_file(tmp_path, monkeypatch, clock):
    fake = patch(monkeypatch, FakeDownload(recorded("yf_download_AAPL_MSFT")))
    YFinancePrices(tmp_path).load(["AAPL"], start="2024-01-04", end="2024-01-05")
    wide = YFinancePrices(tmp_path).load(["AAPL"], start="2024-01-02", end="2024-01-04")
    assert fake.calls[1][1]["start"] == "2024-01-02" and fake.calls[1][1]["end"] == "2024-01-06"
    assert wide["date"].dt.day.tolist() == [2, 3, 4]
    assert pd.read_parquet(tmp_path / "AAPL.parquet")["date"].dt.day.tolist() == [2, 3, 4, 5]


def test_todays_unfinished_bar_is_never_cached(tmp_path, monkeypatch):
    monkeypatch.setattr(prices_yf, "_today", lambda: pd.Timestamp("2024-01-08"))
    fake = patch(monkeypatch, FakeDownload(recorded("yf_download_AAPL_MSFT")))
    df = YFinancePrices(tmp_path).load(["AAPL"], start="2024-01-02")
    assert "end" not in fake.calls[0][1] and df["date"].max() == pd.Timestamp("2024-01-05")
    YFinancePrices(tmp_path).load(["AAPL"], start="2024-01-02")  # same day: the cache covers it
    assert len(fake.calls) == 1
    monkeypatch.setattr(prices_yf, "_today", lambda: pd.Timestamp("2024-01-09"))
    df = YFinancePrices(tmp_path).load(["AAPL"], start="2024-01-02")  # a day later: fetched again, 01-08 now final
    assert len(fake.calls) == 2 and df["date"].max() == pd.Timestamp("2024-01-08")


def test_raw_prices_are_adjusted_here_when_auto_adjust_is_off(tmp_path, monkeypatch, clock):
    patch(monkeypatch, FakeDownload(recorded("yf_download_AAPL_raw")))
    df = YFinancePrices(tmp_path, auto_adjust=False).load(["aapl"], start="2024-01-02", end="2024-01-08")
    assert set(df["ticker"]) == {"aapl"}  # named as asked; cached upper-case
    assert (tmp_path / "AAPL.parquet").exists()
    assert df["close"].iloc[0] == pytest.approx(184.532089)
    assert df["open"].iloc[0] == pytest.approx(187.149994 * 184.532089 / 185.639999)
    assert YFinancePrices(tmp_path, auto_adjust=True, offline=True)._read_cache("AAPL") is None  # other basis


def test_frame_from_download_shapes():
    raw = recorded("yf_download_AAPL_MSFT")
    by_column = frame_from_download(raw, "MSFT", True)
    by_ticker = frame_from_download(raw.swaplevel(axis=1), "MSFT", True)
    flat = frame_from_download(raw.xs("MSFT", axis=1, level=1), "MSFT", True)
    pd.testing.assert_frame_equal(by_column, by_ticker)
    pd.testing.assert_frame_equal(by_column, flat)
    assert len(by_column) == 4 and frame_from_download(raw, "IBM", True) is None
    aware = raw.copy()
    aware.index = aware.index.tz_localize("America/New_York")
    assert frame_from_download(aware, "MSFT", True)["date"].equals(by_column["date"])
    bad = raw.copy()
    bad.loc[bad.index[1], ("Close", "AAPL")] = -1.0
    with pytest.raises(DataContractError, match="yfinance AAPL: non-positive or infinite close -1.0 on 2024-01-03"):
        frame_from_download(bad, "AAPL", True)


def test_cache_file_names_never_leave_the_cache_folder(tmp_path):
    src = YFinancePrices(tmp_path / "cache")
    assert src.cache_path("brk-b") == (tmp_path / "cache" / "BRK-B.parquet").resolve()
    for bad in ("../../etc/passwd", "..", "a/b", "", "x\x00y"):
        with pytest.raises(DataContractError, match="invalid ticker"):
            src.cache_path(bad)
    (tmp_path / "cache").mkdir()
    (tmp_path / "outside.parquet").write_bytes(b"")
    (tmp_path / "cache" / "EVIL.parquet").symlink_to(tmp_path / "outside.parquet")
    with pytest.raises(PriceSourceError, match="would leave the cache folder"):
        src.cache_path("EVIL")


def test_config_default_tickers_and_corrupt_cache(tmp_path, monkeypatch, clock):
    fake = patch(monkeypatch, FakeDownload(recorded("yf_download_AAPL_MSFT")))
    src = price_source_from_config({"kind": "yfinance", "tickers": ["MSFT"], "cache_dir": "c"}, base_dir=tmp_path)
    assert set(src.load(start="2024-01-02")["ticker"]) == {"MSFT"}
    (tmp_path / "c" / "MSFT.parquet").write_bytes(b"not parquet")
    src.load(start="2024-01-02")  # an unreadable cache file is fetched again
    assert len(fake.calls) == 2
