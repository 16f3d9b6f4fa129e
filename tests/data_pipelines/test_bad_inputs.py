"""The bad-input corpus of the data side: every case through the CLI (``newsalpha pairs``), as a table.

Each case starts from the small market of ``pairs_fixtures.py`` (news.csv with columns id, time, headline, symbols;
prices.csv; pairs.yaml) and breaks one thing. A refused input ends in exit code 2 and exactly one error line that
names the file, and the row and column where there is one; no manifest is written. An accepted one ends in exit 0
with the bad rows quarantined by reason, and the manifest's counts add up: records read = articles + quarantined
records, and (article, ticker) rows = kept + quarantined rows.
"""

from __future__ import annotations

import copy
import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
import yaml

from data_pipelines.contracts import MANIFEST_FILE, QUARANTINE_FILE
from newsalpha import cli
from tests.data_pipelines.pairs_fixtures import NEWS_ROWS, prices_frame, write_csv_inputs

GOOD = NEWS_ROWS[:4]  # a1..a4: 5 usable pairs
BASE = {
    "news": {
        "path": "news.csv",
        "columns": {"id": "id", "published_at": "time", "text": "headline", "tickers": "symbols"},
        "dedup_window": "1D",
        "on_bad_rows": "quarantine",
    },
    "prices": {"kind": "file", "path": "prices.csv"},
    "labels": {"horizons": [1, 5], "benchmark": "SPX", "beta_window": 5, "min_beta_obs": 3},
    "splits": {"fractions": [0.5, 0.25, 0.25], "embargo": 5},
}


@dataclass
class Inputs:
    """The files of one case, written by :func:`run_case` after the edits."""

    root: Path
    config: dict = field(default_factory=lambda: copy.deepcopy(BASE))
    news_rows: list = field(default_factory=lambda: list(GOOD))
    news_bytes: bytes | None = None  # replaces news.csv when set
    config_text: str | None = None  # replaces pairs.yaml when set
    prices: pd.DataFrame = field(default_factory=prices_frame)


Edit = Callable[[Inputs], None]


def rows(*extra: tuple) -> Edit:
    return lambda i: i.news_rows.extend(extra)


def csv_bytes(data: bytes, *, append: bool = True) -> Edit:
    def edit(i: Inputs) -> None:
        head = pd.DataFrame(i.news_rows, columns=["id", "time", "headline", "symbols"]).to_csv(index=False).encode()
        i.news_bytes = (head if append else b"") + data

    return edit


def cfg(path: str, value) -> Edit:
    """Set a dotted key of the config (``None`` as value deletes nothing: it sets null)."""

    def edit(i: Inputs) -> None:
        *parents, last = path.split(".")
        node = i.config
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value

    return edit


def config_text(text: str) -> Edit:
    return lambda i: setattr(i, "config_text", text)


def prices(change: Callable[[pd.DataFrame], pd.DataFrame]) -> Edit:
    return lambda i: setattr(i, "prices", change(i.prices))


def news_file(name: str, frame: pd.DataFrame | None = None, text: str | None = None) -> Edit:
    """Use another news file (Parquet from a frame, or text), mapped with the contract's column names."""

    def edit(i: Inputs) -> None:
        path = i.root / name
        if frame is not None:
            frame.to_parquet(path)
        if text is not None:
            path.write_text(text)
        i.config["news"]["path"] = name
        i.config["news"]["columns"] = {"id": "article_id", "published_at": "published_at", "text": "text"}

    return edit


def on_error() -> Edit:
    return cfg("news.on_bad_rows", "error")


EPOCHS = pd.DataFrame(
    {
        "article_id": ["1", "2", "3"],
        "published_at": [1704895200000, 1704981600000, 1705068000000],  # ms: 2024-01-10/11/12 14:00 UTC
        "text": ["one", "two", "three"],
        "ticker": ["AAA", "BBB", "CCC"],
    }
)
SWALLOW = b'b1,2024-01-10 10:00,"unclosed headline,AAA\nb2,2024-01-10 11:00,"second headline",BBB\n'


@dataclass
class Case:
    id: str
    edits: list[Edit]
    code: int
    needles: tuple[str, ...] = ()  # in the error line (exit 2)
    quarantined: dict[str, int] | None = None  # reasons (exit 0)
    records: int | None = None  # records read (exit 0)


REFUSED = [
    Case(
        "bad_time_error",
        [rows(("b1", "31/31/2024 25:00", "x", "AAA")), on_error()],
        2,
        ("news.csv", "row 5", "column 'time'", "bad_time"),
    ),
    Case(
        "empty_text_error",
        [rows(("b1", "2024-01-10 10:00", "", "AAA")), on_error()],
        2,
        ("news.csv", "row 5", "column 'headline'", "empty_text"),
    ),
    Case(
        "unknown_ticker_error",
        [rows(("b1", "2024-01-10 10:00", "who", "NOPE")), on_error()],
        2,
        ("news.csv", "row 5", "column 'symbols'", "unknown_ticker"),
    ),
    Case(
        "duplicate_id_error",
        [rows(("a1", "2024-01-11 10:00", "again", "AAA")), on_error()],
        2,
        ("news.csv", "row 5", "column 'id'", "duplicate_id"),
    ),
    Case(
        "bad_ticker_error",
        [rows(("b1", "2024-01-10 10:00", "x", "../etc")), on_error()],
        2,
        ("news.csv", "row 5", "column 'symbols'", "bad_ticker"),
    ),
    Case(
        "no_ticker_error",
        [rows(("b1", "2024-01-10 10:00", "x", "")), on_error()],
        2,
        ("news.csv", "row 5", "column 'symbols'", "no_ticker", "news.default_ticker"),
    ),
    Case(
        "non_utf8_error",
        [csv_bytes(b"b1,2024-01-10 10:00,caf\xe9,AAA\n"), on_error()],
        2,
        ("news.csv", "row 5", "encoding"),
    ),
    Case("swallowed_record_error", [csv_bytes(SWALLOW), on_error()], 2, ("news.csv", "row 5", "malformed", "line 6")),
    Case("missing_column", [cfg("news.columns.text", "title")], 2, ("news.csv", "column 'title'", "news.columns.text")),
    Case(
        "missing_id_column",
        [cfg("news.columns.id", "key")],
        2,
        ("news.csv", "column 'key'", "or null to number the articles"),
    ),
    Case("empty_news_file", [csv_bytes(b"", append=False)], 2, ("news.csv", "empty")),
    Case("header_only", [csv_bytes(b"id,time,headline,symbols\n", append=False)], 2, ("news.csv", "no records")),
    Case("news_file_missing", [cfg("news.path", "nope.csv")], 2, ("nope.csv", "news file not found")),
    Case(
        "unknown_news_format",
        [cfg("news.path", "news.txt"), lambda i: (i.root / "news.txt").write_text("x")],
        2,
        ("news.txt", "set news.format"),
    ),
    Case(
        "all_rows_bad",
        [lambda i: setattr(i, "news_rows", [("x", "never", "t", "AAA")])],
        2,
        ("no usable news", "bad_time: 1", "row 1"),
    ),
    Case(
        "epochs_of_no_single_unit",
        [
            news_file("news.parquet", EPOCHS.assign(published_at=[1704895200, 1704981600000, 1705068000])),
            cfg("news.default_ticker", "AAA"),
        ],
        2,
        ("news.parquet", "row 2", "column 'published_at'", "news.timestamp_unit"),
    ),
    Case(
        "config_unknown_key",
        [cfg("lables", {"horizons": [1]})],
        2,
        ("pairs.yaml", "unknown key 'lables'", "did you mean 'labels'"),
    ),
    Case("config_nested_typo", [cfg("news.colums", {"id": "id"})], 2, ("pairs.yaml", "unknown key 'news.colums'")),
    Case(
        "config_wrong_type",
        [cfg("labels.beta_window", "long")],
        2,
        ("pairs.yaml", "'labels.beta_window' must be an integer"),
    ),
    Case(
        "config_yaml_syntax",
        [config_text("news:\n  path: a\n  columns: [unclosed\n")],
        2,
        ("pairs.yaml, line 4, column 1", "not valid YAML"),
    ),
    Case("config_top_level_list", [config_text("- 1\n- 2\n")], 2, ("pairs.yaml", "top level must be a mapping")),
    Case(
        "config_section_not_mapping", [cfg("news.columns", "id")], 2, ("pairs.yaml", "news.columns must be a mapping")
    ),
    Case(
        "config_file_missing",
        [lambda i: setattr(i, "config_text", "<missing>")],
        2,
        ("pairs.yaml", "config file not found"),
    ),
    Case(
        "unknown_encoding",
        [cfg("news.encoding", "no-such-codec")],
        2,
        ("pairs.yaml", "'news.encoding': unknown text encoding 'no-such-codec'"),
    ),
    Case(
        "huge_beta_window",
        [cfg("labels.beta_window", 100_000_000)],
        2,
        ("pairs.yaml", "'labels.beta_window' must be from 2 to 2520"),
    ),
    Case("huge_horizon", [cfg("labels.horizons", [1, 100_000])], 2, ("pairs.yaml", "'labels.horizons'")),
    Case("negative_latency", [cfg("labels.latency", "-5min")], 2, ("pairs.yaml", "'labels.latency'")),
    Case("short_embargo", [cfg("splits.embargo", 2)], 2, ("pairs.yaml", "'splits.embargo' (2)")),
    Case("unknown_calendar", [cfg("labels.calendar", "XNYZ")], 2, ("pairs.yaml", "'labels.calendar' 'XNYZ'")),
    Case("unknown_timezone", [cfg("news.timezone", "Mars/Olympus")], 2, ("pairs.yaml", "'news.timezone'")),
    Case(
        "bad_split_date",
        [cfg("splits.train_end", "soon"), cfg("splits.val_end", "2024-02-01")],
        2,
        ("pairs.yaml", "'splits.train_end' is not a date"),
    ),
    Case("two_news_sources", [cfg("news.embedded", "trump_tweets")], 2, ("pairs.yaml", "exactly one of 'news.path'")),
    Case("unknown_price_kind", [cfg("prices", {"kind": "bloomberg"})], 2, ("pairs.yaml", "prices.kind 'bloomberg'")),
    Case(
        "unknown_price_key",
        [cfg("prices.clse_column", "Close")],
        2,
        ("pairs.yaml", "unknown key 'clse_column' for kind file"),
    ),
    Case("price_file_missing", [cfg("prices.path", "nope.csv")], 2, ("nope.csv", "not found")),
    Case(
        "non_positive_price",
        [prices(lambda p: p.assign(close=p.close.where(p.index != 3, 0.0)))],
        2,
        ("prices.csv", "row 4", "column 'close'"),
    ),
    Case(
        "unparseable_price_date",
        [prices(lambda p: p.astype({"date": object}).assign(date=lambda d: d.date.where(d.index != 6, "someday")))],
        2,
        ("prices.csv", "row 7", "column 'date'"),
    ),
    Case(
        "duplicated_price",
        [prices(lambda p: pd.concat([p, p.iloc[[2]]], ignore_index=True))],
        2,
        ("prices.csv", "duplicated (date, ticker)", "column 'date'"),
    ),
    Case(
        "invalid_price_ticker",
        [prices(lambda p: p.assign(ticker=p.ticker.where(p.index != 0, "../x")))],
        2,
        ("prices.csv", "row 1", "column 'ticker'"),
    ),
    Case("price_column_missing", [prices(lambda p: p.drop(columns="close"))], 2, ("prices.csv", "column 'close'")),
    Case(
        "benchmark_without_prices",
        [prices(lambda p: p[p.ticker != "SPX"])],
        2,
        ("benchmark SPX has no prices", "labels.benchmark: null"),
    ),
]

ACCEPTED = [
    Case("clean", [], 0, quarantined={}, records=4),
    Case("swallowed_record", [csv_bytes(SWALLOW)], 0, quarantined={"malformed": 1}, records=6),
    Case(
        "too_many_fields", [csv_bytes(b"b1,2024-01-10 10:00,x,AAA,extra\n")], 0, quarantined={"malformed": 1}, records=5
    ),
    Case(
        "unclosed_quote_at_end",
        [csv_bytes(b'b1,2024-01-10 10:00,"never closed,AAA\n')],
        0,
        quarantined={"malformed": 1},
        records=5,
    ),
    Case(
        "non_utf8_bytes", [csv_bytes(b"b1,2024-01-10 10:00,caf\xe9,AAA\n")], 0, quarantined={"encoding": 1}, records=5
    ),
    Case("bad_time", [rows(("b1", "yesterday-ish", "x", "AAA"))], 0, quarantined={"bad_time": 1}, records=5),
    Case(
        "bad_and_good_ticker",
        [rows(("b1", "2024-01-10 10:00", "x", "../etc, CCC"))],
        0,
        quarantined={"bad_ticker": 1},
        records=5,
    ),
    Case("no_ticker", [rows(("b1", "2024-01-10 10:00", "x", ""))], 0, quarantined={"no_ticker": 1}, records=5),
    Case("missing_id", [rows(("", "2024-01-10 10:00", "x", "AAA"))], 0, quarantined={"missing_id": 1}, records=5),
    Case(
        "duplicate_story",
        [rows(("b1", "2024-01-10 13:00", "AAA beats estimates!", "AAA"))],
        0,
        quarantined={"duplicate": 1},
        records=5,
    ),
    Case(
        "unknown_ticker",
        [rows(("b1", "2024-01-10 10:00", "x", "ZZZ"))],
        0,
        quarantined={"unknown_ticker": 1},
        records=5,
    ),
    Case("blank_lines", [csv_bytes(b"\n\nb1,2024-01-10 10:00,after blank lines,CCC\n")], 0, quarantined={}, records=5),
    Case(
        "gap_at_entry",
        [prices(lambda p: p[~((p.ticker == "AAA") & (p.date == "2024-01-10"))])],
        0,
        quarantined={"missing_price": 1},
        records=4,
    ),
    Case(
        "short_beta_history",
        [cfg("labels.beta_window", 250), cfg("labels.min_beta_obs", 60)],
        0,
        quarantined={},
        records=4,
    ),
    Case("epoch_milliseconds", [news_file("news.parquet", EPOCHS)], 0, quarantined={}, records=3),
    Case(
        "jsonl_bad_line",
        [news_file("news.jsonl", text=EPOCHS.to_json(orient="records", lines=True) + "{oops\n")],
        0,
        quarantined={"malformed": 1},
        records=4,
    ),
]


def run_case(case: Case, root: Path, capsys) -> tuple[int, str, Inputs]:
    inputs = Inputs(root)
    for edit in case.edits:
        edit(inputs)
    news_path, prices_path = write_csv_inputs(root, news_rows=inputs.news_rows)
    if inputs.news_bytes is not None:
        news_path.write_bytes(inputs.news_bytes)
    px = inputs.prices.copy()
    if pd.api.types.is_datetime64_any_dtype(px.get("date")):
        px["date"] = px["date"].dt.strftime("%Y-%m-%d")
    px.to_csv(prices_path, index=False)
    config = root / "pairs.yaml"
    if inputs.config_text != "<missing>":
        config.write_text(inputs.config_text or yaml.safe_dump(inputs.config), encoding="utf-8")
    capsys.readouterr()
    code = cli.main(["pairs", "--config", str(config), "--out", str(root / "run")])
    return code, capsys.readouterr().err, inputs


@pytest.mark.parametrize("case", REFUSED, ids=lambda c: c.id)
def test_refused_inputs_end_in_one_line_naming_the_culprit(case, tmp_path, capsys):
    code, err, _ = run_case(case, tmp_path, capsys)
    assert code == case.code == 2, err
    errors = [ln for ln in err.splitlines() if ln.startswith("newsalpha: error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    for needle in case.needles:
        assert needle in errors[0], errors[0]
    assert not (tmp_path / "run" / MANIFEST_FILE).exists()


@pytest.mark.parametrize("case", ACCEPTED, ids=lambda c: c.id)
def test_accepted_inputs_quarantine_bad_rows_and_the_counts_add_up(case, tmp_path, capsys):
    code, err, _ = run_case(case, tmp_path, capsys)
    assert code == case.code == 0, err
    manifest = json.loads((tmp_path / "run" / MANIFEST_FILE).read_text())
    c = manifest["counts"]
    quarantine = pd.read_parquet(tmp_path / "run" / QUARANTINE_FILE)
    assert c["input_rows"] == case.records  # every physical record, good or bad
    assert c["input_rows"] == c["articles"] + sum(c["quarantined_articles"].values())
    assert c["exploded_rows"] == c["kept"] + sum(c["quarantined_pairs"].values())
    assert sum(c["quarantined"].values()) == len(quarantine)
    assert c["quarantined"] == case.quarantined
    assert quarantine["detail"].notna().all()


def test_the_corpus_is_large_enough():
    assert len(REFUSED) + len(ACCEPTED) >= 50


def test_gzip_news_with_a_swallowed_record(tmp_path, capsys):
    """The same protection in a compressed file."""
    case = Case("gz", [csv_bytes(SWALLOW), cfg("news.path", "news.csv.gz")], 0, quarantined={"malformed": 1}, records=6)
    inputs = Inputs(tmp_path)
    for edit in case.edits:
        edit(inputs)
    write_csv_inputs(tmp_path, news_rows=inputs.news_rows)
    (tmp_path / "news.csv.gz").write_bytes(gzip.compress(inputs.news_bytes))
    (tmp_path / "pairs.yaml").write_text(yaml.safe_dump(inputs.config))
    assert cli.main(["pairs", "--config", str(tmp_path / "pairs.yaml"), "--out", str(tmp_path / "run")]) == 0
    c = json.loads((tmp_path / "run" / MANIFEST_FILE).read_text())["counts"]
    assert c["input_rows"] == 6 and c["quarantined"] == {"malformed": 1} and c["articles"] == 5
