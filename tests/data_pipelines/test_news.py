"""News ingestion: formats, column mapping, time zones, tickers, duplicates and the quarantine."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from data_pipelines.contracts import QUARANTINE_COLUMNS, QUARANTINE_DTYPES
from data_pipelines.errors import ConfigError, DataContractError
from data_pipelines.news.ingest import parse_published, read_news, split_tickers

UTC = "UTC"
COLS = {"id": "id", "published_at": "time", "text": "text", "tickers": "tickers"}


def _ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=UTC)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("2024-01-10 10:00", "2024-01-10 15:00"),  # naive, New York winter (EST, UTC-5)
        ("2024-07-10 10:00", "2024-07-10 14:00"),  # naive, New York summer (EDT, UTC-4)
        ("2024-01-10T10:00:00Z", "2024-01-10 10:00"),  # aware: Z
        ("2024-01-10T10:00:00+02:00", "2024-01-10 08:00"),  # aware: offset
        ("2024-01-10 10:00:00 UTC", "2024-01-10 10:00"),  # aware: 'UTC' suffix (FNSPID style)
        ("Wed, 10 Jan 2024 10:00:00 GMT", "2024-01-10 10:00"),  # RFC 2822
        ("2024-11-03 01:30", "2024-11-03 06:30"),  # repeated fall-back hour: the later instant (EST)
        ("2024-03-10 02:30", "2024-03-10 07:00"),  # skipped spring-forward hour: moved forward to 03:00 EDT
    ],
)
def test_parse_published_time_zones(raw, expected):
    got = parse_published(pd.Series([raw]), "America/New_York")
    assert got.iloc[0] == _ts(expected)
    assert str(got.dtype) == "datetime64[ns, UTC]"


def test_parse_published_other_zone_epoch_and_junk():
    assert parse_published(pd.Series(["2024-01-10 10:00"]), "Europe/London").iloc[0] == _ts("2024-01-10 10:00")
    assert parse_published(pd.Series([1704880800]), "America/New_York").iloc[0] == _ts("2024-01-10 10:00")
    got = parse_published(pd.Series(["junk", None, "2024-01-10 10:00"]), "America/New_York")
    assert got.isna().tolist() == [True, True, False]
    aware = pd.Series(pd.to_datetime(["2024-01-10 10:00"]).tz_localize("Asia/Tokyo"))
    assert parse_published(aware).iloc[0] == _ts("2024-01-10 01:00")


def test_parse_published_unknown_zone():
    with pytest.raises(ConfigError, match="time zone"):
        parse_published(pd.Series(["2024-01-10"]), "Mars/Olympus")


@pytest.mark.parametrize(
    "value, expected",
    [
        ("AAPL", ["AAPL"]),
        ("aapl, msft;IBM|goog  amzn", ["AAPL", "MSFT", "IBM", "GOOG", "AMZN"]),
        ("['AAPL', 'MSFT']", ["AAPL", "MSFT"]),
        (["AAPL", "msft", "AAPL"], ["AAPL", "MSFT"]),
        (np.array(["BRK-B"]), ["BRK-B"]),
        (None, []),
        (float("nan"), []),
        ("", []),
    ],
)
def test_split_tickers(value, expected):
    assert split_tickers(value) == expected


def test_split_tickers_custom_delimiter():
    assert split_tickers("BRK B/AAPL", "/") == ["BRK B", "AAPL"]


def _csv(tmp_path, text: str | bytes, name: str = "news.csv"):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def test_csv_title_body_and_explode(tmp_path):
    path = _csv(
        tmp_path,
        "key,when,title,body,syms\n"
        'k1,2024-01-10 10:00,Headline,Body text,"AAA,BBB"\n'
        "k2,2024-01-10 11:00,Only a title,,CCC\n",
    )
    cols = {"id": "key", "published_at": "when", "title": "title", "body": "body", "tickers": "syms"}
    res = read_news(path, columns=cols)
    assert list(zip(res.news.article_id, res.news.ticker, strict=True)) == [("k1", "AAA"), ("k1", "BBB"), ("k2", "CCC")]
    assert res.news.text.iloc[0] == "Headline\n\nBody text" and res.news.text.iloc[2] == "Only a title"
    assert res.counts == {"input_rows": 2, "articles": 2, "exploded_rows": 3, "kept": 3}
    assert res.quarantine.empty


def test_no_ticker_column_uses_the_default_asset(tmp_path):
    path = _csv(tmp_path, "id,time,text\n1,2024-01-10 10:00,hello\n")
    res = read_news(path, columns={"id": "id", "published_at": "time", "text": "text"}, default_ticker="spx")
    assert res.news.ticker.tolist() == ["SPX"]
    res = read_news(path, columns={"id": "id", "published_at": "time", "text": "text"})
    assert res.quarantine.reason.tolist() == ["no_ticker"] and res.news.empty


def test_bad_rows_are_quarantined_with_reasons(tmp_path):
    path = _csv(
        tmp_path,
        b"id,time,text,tickers\n"
        b"1,2024-01-10 10:00,fine,AAA\n"
        b"2,yesterday-ish,bad time,AAA\n"
        b"3,2024-01-10 10:00,  ,AAA\n"
        b"4,2024-01-10 10:00,caf\xe9 latin-1,AAA\n"
        b"1,2024-01-11 10:00,second use of id 1,AAA\n"
        b"5,2024-01-10 10:00,bad ticker,../etc\n"
        b",2024-01-10 10:00,no id,AAA\n",
    )
    res = read_news(path, columns=COLS)
    got = dict(zip(res.quarantine.source_row, res.quarantine.reason, strict=True))
    assert got == {2: "bad_time", 3: "empty_text", 4: "encoding", 5: "duplicate_id", 6: "bad_ticker", 7: "missing_id"}
    assert res.news.article_id.tolist() == ["1"]
    assert "yesterday-ish" in res.quarantine.set_index("source_row").loc[2, "detail"]
    c = res.counts
    assert c["input_rows"] == c["articles"] + (res.quarantine.stage == "news").sum()
    assert c["exploded_rows"] == c["kept"] + (res.quarantine.stage == "pairs").sum()
    assert list(res.quarantine.columns) == list(QUARANTINE_COLUMNS)
    assert res.quarantine.dtypes.astype(str).to_dict() == {k: str(v) for k, v in QUARANTINE_DTYPES.items()}
    res.quarantine.to_parquet(tmp_path / "q.parquet")  # undecodable bytes never reach the saved table


def test_duplicate_id_keeps_the_earliest_publication(tmp_path):
    path = _csv(tmp_path, "id,time,text,tickers\n1,2024-01-11 10:00,later,AAA\n1,2024-01-10 10:00,earlier,AAA\n")
    res = read_news(path, columns=COLS)
    assert res.news.text.tolist() == ["earlier"]
    assert res.quarantine.source_row.tolist() == [1] and "row 2" in res.quarantine.detail.iloc[0]


def test_on_bad_rows_error_names_file_row_and_column(tmp_path):
    path = _csv(tmp_path, "id,time,text,tickers\n1,2024-01-10 10:00,ok,AAA\n2,nope,x,AAA\n")
    with pytest.raises(DataContractError) as err:
        read_news(path, columns=COLS, on_bad_rows="error")
    assert str(path) in str(err.value) and "row 2" in str(err.value) and "'time'" in str(err.value)


def test_duplicates_within_window_keep_the_earliest():
    t0 = pd.Timestamp("2024-01-10 10:00", tz=UTC)
    news = pd.DataFrame(
        {
            "article_id": ["a", "b", "c", "d", "e"],
            "published_at": [t0, t0 + pd.Timedelta("20h"), t0 + pd.Timedelta("40h"), t0, t0 + pd.Timedelta("1h")],
            "text": ["Fed hikes rates.", "FED  hikes rates", "fed hikes rates!", "Fed hikes rates.", "Other"],
            "ticker": ["AAA", "AAA", "AAA", "BBB", "AAA"],
        }
    )
    res = read_news(news, dedup_window="1D")
    # b repeats a within a day; c is 40 h after a (the last kept), so it is kept; d has another ticker.
    assert sorted(res.news.article_id) == ["a", "c", "d", "e"]
    assert res.quarantine.reason.tolist() == ["duplicate"] and "article a" in res.quarantine.detail.iloc[0]
    res = read_news(news, dedup_window=None)
    assert sorted(res.news.article_id) == ["a", "d", "e"]


def test_jsonl_lists_and_bad_lines(tmp_path):
    lines = [
        json.dumps({"id": "1", "t": "2024-01-10T15:00:00Z", "text": "one", "tickers": ["AAA", "BBB"]}).encode(),
        b"{not json",
        json.dumps({"id": "2", "t": "2024-01-10T15:00:00Z", "text": "two", "tickers": "CCC"}).encode(),
        b'{"id": "3", "t": "2024-01-10T15:00:00Z", "text": "\xff\xfe", "tickers": "AAA"}',
        b"[1, 2]",
    ]
    path = _csv(tmp_path, b"\n".join(lines) + b"\n", "news.jsonl")
    res = read_news(path, columns={"id": "id", "published_at": "t", "text": "text", "tickers": "tickers"})
    assert list(zip(res.news.article_id, res.news.ticker, strict=True)) == [("1", "AAA"), ("1", "BBB"), ("2", "CCC")]
    assert dict(zip(res.quarantine.source_row, res.quarantine.reason, strict=True)) == {
        2: "malformed",
        4: "encoding",
        5: "malformed",
    }
    assert res.counts["input_rows"] == 5


def test_parquet_with_aware_and_naive_datetimes(tmp_path):
    df = pd.DataFrame(
        {
            "article_id": ["1", "2"],
            "published_at": pd.to_datetime(["2024-01-10 10:00", "2024-07-10 10:00"]),
            "text": ["x", "y"],
            "ticker": ["AAA", "AAA"],
        }
    )
    df.to_parquet(tmp_path / "naive.parquet")
    res = read_news(tmp_path / "naive.parquet", columns=None)
    assert res.news.published_at.tolist() == [_ts("2024-01-10 15:00"), _ts("2024-07-10 14:00")]
    df["published_at"] = df["published_at"].dt.tz_localize("Europe/Paris")
    df.to_parquet(tmp_path / "aware.parquet")
    res = read_news(tmp_path / "aware.parquet", columns=None)
    assert res.news.published_at.tolist() == [_ts("2024-01-10 09:00"), _ts("2024-07-10 08:00")]


def test_missing_column_names_file_and_column(tmp_path):
    path = _csv(tmp_path, "id,time,body\n1,2024-01-10,x\n")
    with pytest.raises(DataContractError, match=r"news.csv, column 'text'"):
        read_news(path, columns=COLS)


@pytest.mark.parametrize(
    "content, name", [(b"", "news.csv"), (b"id,time,text,tickers\n", "news.csv"), (b"", "n.jsonl")]
)
def test_empty_files(tmp_path, content, name):
    path = _csv(tmp_path, content, name)
    with pytest.raises(DataContractError, match="empty|no records"):
        read_news(path, columns=COLS)


def test_unknown_format_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="format"):
        read_news(_csv(tmp_path, "x", "news.txt"), columns=COLS)
    with pytest.raises(DataContractError, match="not found"):
        read_news(tmp_path / "nope.csv", columns=COLS)


# --------------------------------------------------------------------------- CSV records that swallow the next one

SWALLOW = (
    "id,time,text,tickers\n"
    '1,2024-01-10 10:00,"unclosed text,AAA\n'
    '2,2024-01-10 11:00,"second text",BBB\n'
    "3,2024-01-10 12:00,third,CCC\n"
)


def test_unclosed_quote_does_not_swallow_the_next_record(tmp_path):
    path = _csv(tmp_path, SWALLOW)
    assert len(pd.read_csv(path)) == 2  # what pandas alone makes of it: record 2 swallowed into record 1
    res = read_news(path, columns=COLS)
    assert list(zip(res.news.article_id, res.news.text, res.news.ticker, strict=True)) == [
        ("2", "second text", "BBB"),
        ("3", "third", "CCC"),
    ]
    (q,) = res.quarantine.itertuples()
    assert (q.source_row, q.reason) == (1, "malformed") and q.detail.startswith("line 2: ") and "quote" in q.detail
    assert res.counts["input_rows"] == 3 == res.counts["articles"] + len(res.quarantine)
    with pytest.raises(DataContractError, match=r"news.csv, row 1: malformed: line 2"):
        read_news(path, columns=COLS, on_bad_rows="error")


def test_strict_csv_reader_keeps_legal_multiline_fields_and_pandas_names(tmp_path):
    frame = pd.DataFrame({"time": ["2024-01-10 10:00"] * 3, "text": ["two\nlines", 'a "quoted", word', "x"]})
    frame["tickers"] = ["AAA", "BBB", "CCC"]
    frame.to_csv(tmp_path / "news.csv")  # an unnamed index column, as FNSPID has
    gz = tmp_path / "news.csv.gz"
    gz.write_bytes(__import__("gzip").compress((tmp_path / "news.csv").read_bytes() + b'3,2024-01-10,"open,DDD\n'))
    for path, bad in ((tmp_path / "news.csv", 0), (gz, 1)):
        res = read_news(
            path, columns={"id": "Unnamed: 0", "published_at": "time", "text": "text", "tickers": "tickers"}
        )
        assert res.news.text.tolist() == ["two\nlines", 'a "quoted", word', "x"]
        assert res.news.article_id.tolist() == ["0", "1", "2"] and len(res.quarantine) == bad
        assert res.counts["input_rows"] == 3 + bad


@pytest.mark.parametrize(
    "text, rows, reasons",
    [
        ("id,time,text,tickers\n1,2024-01-10,x,AAA,extra\n2,2024-01-10,y,BBB\n", ["2"], {1: "malformed"}),
        ('id,time,text,tickers\n1,2024-01-10,x,AAA\n2,2024-01-10,"never closed,BBB\n', ["1"], {2: "malformed"}),
        ("id,time,text,tickers\n1,2024-01-10,x,AAA\n\n2,2024-01-10,y\n", ["1"], {2: "no_ticker"}),
    ],
    ids=["too_many_fields", "unclosed_at_end_of_file", "blank_line_and_short_record"],
)
def test_malformed_csv_records_are_quarantined_and_counted(tmp_path, text, rows, reasons):
    res = read_news(_csv(tmp_path, text), columns=COLS)
    assert res.news.article_id.tolist() == rows
    assert dict(zip(res.quarantine.source_row, res.quarantine.reason, strict=True)) == reasons
    assert res.counts["input_rows"] == res.counts["articles"] + (res.quarantine.stage == "news").sum()


# --------------------------------------------------------------------------- epoch timestamps


@pytest.mark.parametrize("unit, scale", [("s", 1), ("ms", 10**3), ("us", 10**6), ("ns", 10**9)])
def test_integer_epochs_in_any_unit_are_inferred(tmp_path, unit, scale):
    stamps = [1704880800 * scale, 1704884400 * scale]
    pd.DataFrame(
        {"article_id": ["1", "2"], "published_at": stamps, "text": ["a", "b"], "ticker": ["A", "B"]}
    ).to_parquet(tmp_path / "n.parquet")
    res = read_news(tmp_path / "n.parquet")
    assert res.news.published_at.tolist() == [_ts("2024-01-10 10:00"), _ts("2024-01-10 11:00")]
    lines = [
        json.dumps({"article_id": str(i), "published_at": t, "text": "x", "ticker": "A"}) for i, t in enumerate(stamps)
    ]
    (tmp_path / "n.jsonl").write_text("\n".join(lines) + "\n")
    assert read_news(tmp_path / "n.jsonl").news.published_at.iloc[0] == _ts("2024-01-10 10:00")
    assert read_news(tmp_path / "n.parquet", timestamp_unit=unit).news.published_at.iloc[1] == _ts("2024-01-10 11:00")


def test_epoch_digit_strings_in_csv_and_an_explicit_unit(tmp_path):
    path = _csv(tmp_path, "id,time,text,tickers\n1,1704880800000,a,AAA\n2,1704884400000,b,BBB\n")
    assert read_news(path, columns=COLS).news.published_at.iloc[0] == _ts("2024-01-10 10:00")
    wrong = read_news(path, columns=COLS, timestamp_unit="s")  # milliseconds read as seconds: out of range
    assert wrong.news.empty and set(wrong.quarantine.reason) == {"bad_time"}
    assert "column 'time' as a Unix time in s (news.timestamp_unit)" in wrong.quarantine.detail.iloc[0]
    compact = _csv(tmp_path, "id,time,text,tickers\n1,20240110,a,AAA\n", "compact.csv")  # a date, not an epoch
    assert read_news(compact, columns=COLS).news.published_at.iloc[0] == _ts("2024-01-10 05:00")


def test_epochs_of_no_single_unit_are_refused_in_one_line(tmp_path):
    df = pd.DataFrame({"article_id": ["1", "2", "3"], "ts": [1704880800, 1704880800000, 1704884400], "text": "x"})
    df.to_parquet(tmp_path / "n.parquet")
    with pytest.raises(DataContractError) as err:
        read_news(tmp_path / "n.parquet", columns={"published_at": "ts"}, default_ticker="SPX")
    msg = str(err.value)
    assert msg.startswith(f"{tmp_path / 'n.parquet'}, row 2, column 'ts': ") and "news.timestamp_unit" in msg
    assert "\n" not in msg


def test_unknown_encoding_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown text encoding 'no-such-codec'"):
        read_news(_csv(tmp_path, "id,time,text,tickers\n1,2024-01-10,a,AAA\n"), columns=COLS, encoding="no-such-codec")
