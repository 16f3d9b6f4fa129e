"""The tear-sheet report: one IC definition per mode, units, deflated Sharpe with n_trials, titles, data quality,
configs, escaping, and the experiment report."""

from __future__ import annotations

import base64
import html
import json
import math
import re
import shutil

import numpy as np
import pandas as pd
import pytest

from data_pipelines.errors import ConfigError
from evaluation import run_backtest, sharpe
from evaluation.experiment_report import build_experiment_report
from evaluation.market import load_market
from evaluation.report import build_report
from evaluation.report_format import column_aligns, dedupe_configs, deflated, md_escape, quality_rows
from evaluation.rundata import load_run, unit_table
from evaluation.sheet import build_sheet, decay_labels
from tests.evaluation.tearsheet_runs import noisy_copy, synth_run, ts_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tearsheet")
    cs = synth_run(root / "synthstudy")
    return {"cs": cs, "ts": ts_run(root / "tsstudy"), "noisy": noisy_copy(cs, root / "synthstudy" / "noisy")}


@pytest.fixture(scope="module")
def sheets(runs):
    return {k: (load_run(runs[k]), build_sheet(load_run(runs[k]))) for k in ("cs", "ts")}


def _svg(html_text: str, fig_id: str) -> str:
    block = html_text.split(f'id="fig-{fig_id}"', 1)[1]
    data = re.search(r"data:image/svg\+xml;base64,([^\"]+)", block).group(1)
    return base64.b64decode(data).decode("utf-8")


@pytest.mark.parametrize("mode", ["cs", "ts"])
def test_one_ic_definition_headline_equals_the_sheet(sheets, mode):
    data, sheet = sheets[mode]
    decay = sheet["ic_decay"].set_index("horizon")
    assert decay.loc[data.horizon, "ic"] == pytest.approx(data.metrics["ic_mean"], abs=1e-12)
    assert decay.loc[data.horizon, "tstat"] == pytest.approx(data.metrics["ic_tstat"], rel=1e-9)
    per_year = sheet["per_year"]
    assert per_year["ic"].notna().all()  # no "n/a" year in either mode


def test_prices_reproduce_the_pairs_labels(sheets):
    data, _ = sheets["cs"]
    arts = data.articles
    tickers = sorted(arts["ticker"].unique())
    market = load_market(
        data.manifest, data.context["pairs_file"], tickers, arts["session"].min(), arts["session"].max()
    )
    labels = decay_labels(data, None)  # the pairs' own columns
    from evaluation.market import horizon_labels

    recomputed = horizon_labels(data.articles, market, "exret", (1, 5))
    for h in (1, 5):
        ok = np.isfinite(labels[h])
        assert np.allclose(recomputed[h][ok], labels[h][ok], atol=1e-12)
    assert set(decay_labels(data, market)) == {1, 2, 3, 5, 10, 20}
    units = unit_table(data.articles, labels)
    assert len(units) == data.articles.groupby(["session", "ticker", "entry_kind"]).ngroups  # one unit per print


def test_time_series_page_says_timing_and_shows_exposure(runs):
    text = build_report(runs["ts"])["html"].read_text(encoding="utf-8")
    metrics = json.loads((runs["ts"] / "metrics.json").read_text())
    assert metrics["mode"] == "time_series"
    body = text.split("<body>", 1)[1].lower()
    assert "long-short" not in body.replace(html.escape(metrics["verdict"]).lower(), "")
    daily = pd.read_parquet(runs["ts"] / "evaluation" / "daily.parquet")
    n_long, n = int((daily["n_long"] > 0).sum()), len(daily)
    assert f"long {n_long} of {n}" in text
    quantiles = _svg(text, "quantiles")
    q = pd.read_parquet(runs["ts"] / "evaluation" / "quantiles.parquet")
    for name in ("short", "flat", "long"):
        assert name in quantiles
    for count in q["n_sessions"]:
        assert f"{int(count)} s." in quantiles
    assert "Rolling correlation" in text and "Distribution of the daily IC" not in text


def test_units_deflated_sharpe_and_titles(runs):
    text = build_report(runs["cs"])["html"].read_text(encoding="utf-8")
    assert "Units: returns per session in basis points" in text
    assert re.search(r"mean per session, net</td><td class=\"num\">-?[\d.,]+ bp \(t", text)
    assert "n_trials = 1: not deflated" in text
    title = re.search(r"<title>(.*)</title>", text).group(1)
    assert title.startswith("synthstudy · ") and "exret_h1" in title and "evaluation: fit" not in text
    assert deflated({"deflated_sharpe": 0.5, "n_trials": 12}) == "0.500 (deflated for n_trials = 12 configurations)"


def test_data_quality_table_and_collapsed_configs(runs):
    text = build_report(runs["cs"])["html"].read_text(encoding="utf-8")
    quality = text.split('id="quality-table"', 1)[1].split("</section>", 1)[0]
    manifest = json.loads((runs["cs"].parent / "pairs" / "manifest.json").read_text())
    assert f'<td class="num">{manifest["counts"]["input_rows"]:,}</td>' in quality and "pairs kept" in quality
    details = re.findall(r"<details><summary>(.*?)</summary>", text)
    assert len(details) == 4  # evaluation options, pairs config, config.yaml, config_predict.yaml
    assert any("config_predict.yaml" in d and "differences from config.yaml" in d for d in details)
    predict = text.split("config_predict.yaml<small>", 1)[1].split("</pre>", 1)[0]
    assert "+  inference_mode: true" in predict and "seed_everything" not in predict  # a diff, not a second copy


def test_markdown_and_html_escape_a_hostile_run_name(runs, tmp_path):
    hostile = tmp_path / "<img src=x onerror=alert(1)>"
    shutil.copytree(runs["ts"], hostile)
    run_backtest(hostile)
    paths = build_report(hostile)
    md, page = paths["md"].read_text(encoding="utf-8"), paths["html"].read_text(encoding="utf-8")
    assert "<img src=x" not in md and "&lt;img src=x onerror=alert(1)&gt;" in md
    assert "<img src=x" not in page and "<script" not in page


def test_experiment_report_dm_matrix_and_trials(runs, tmp_path):
    paths = build_experiment_report([runs["cs"], runs["noisy"]], tmp_path / "exp", names=["a", "b"])
    record = json.loads(paths["json"].read_text())
    assert record["n_trials"] == 2
    dm = {(r["row"], r["column"]): r for r in record["dm"]}
    names = {p["name"] for p in record["predictors"]}
    assert {"a", "b", "zero", "train_mean"} <= names
    for (row, col), r in dm.items():
        assert r["dm"] == pytest.approx(-dm[(col, row)]["dm"])  # antisymmetric: the same test from each side
    assert dm[("a", "b")]["dm"] > 2  # noise makes b worse
    a_daily = pd.read_parquet(runs["cs"] / "evaluation" / "daily.parquet")["net"]
    b_daily = pd.read_parquet(runs["noisy"] / "evaluation" / "daily.parquet")["net"]
    var = np.var([x.mean() / x.std(ddof=1) for x in (a_daily, b_daily)], ddof=1)
    dsr_a = next(p["deflated_sharpe"] for p in record["predictors"] if p["name"] == "a")
    assert dsr_a == pytest.approx(sharpe.deflated_sharpe(a_daily, 2, var))
    text = paths["html"].read_text(encoding="utf-8")
    assert "n_trials = 2" in text and 'class="better"' in text and 'class="worse"' in text
    more = build_experiment_report([runs["cs"]], tmp_path / "exp12", n_trials=12)
    assert json.loads(more["json"].read_text())["n_trials"] == 12
    with pytest.raises(ConfigError, match="n_trials"):
        build_experiment_report([runs["cs"], runs["noisy"]], tmp_path / "bad", n_trials=1)


def test_experiment_report_accepts_metrics_dicts(runs, tmp_path):
    metrics = json.loads((runs["cs"] / "metrics.json").read_text())
    paths = build_experiment_report([metrics, {"name": "other", "metrics": metrics}], tmp_path / "dicts")
    record = json.loads(paths["json"].read_text())
    assert [p["name"] for p in record["predictors"]] == ["fit", "other"] and record["dm"] == []
    assert math.isnan(float(record["predictors"][0]["deflated_sharpe"] or "nan"))


def test_md_escape_and_alignment_and_dedupe():
    assert md_escape("a|b *c* <x>") == "a\\|b \\*c\\* &lt;x&gt;"
    assert column_aligns([["x", "1.0 bp", "n/a", "2024-01-02"], ["y", "-2%", "[0.1, 0.2]", "2024-01-03"]]) == [
        "text",
        "num",
        "num",
        "text",
    ]
    shown = dedupe_configs([("a", "k: 1\nm: 2\nn: 3\n"), ("b", "k: 1\nm: 2\nn: 3\n"), ("c", "k: 1\nm: 2\nn: 4\n")])
    assert [s["name"] for s in shown] == ["a", "c"] and "identical to b" in shown[0]["note"]
    assert shown[1]["note"] == "differences from a" and "+n: 4" in shown[1]["text"]
    rows = quality_rows({"counts": {"input_rows": 10, "kept": 8, "quarantined": {"no_price": 2}}}, None)
    assert ["pairs", "quarantined: no_price", "2", "20.0%"] in rows and ["pairs", "pairs kept", "8", "80.0%"] in rows


def test_report_at_h5_and_without_pairs(runs, tmp_path):
    from data_pipelines.contracts import Label
    from evaluation.baselines import read_pairs, run_baselines

    pairs = runs["cs"].parent / "pairs"
    run = tmp_path / "h5"
    run_baselines(read_pairs(pairs), Label("exret", 5), run / "baselines", names=("tfidf_ridge",))
    shutil.move(run / "baselines" / "tfidf_ridge.parquet", run / "predictions.parquet")
    metrics = run_backtest(run, pairs=pairs / "pairs.parquet")
    assert metrics["horizon"] == 5
    data = load_run(run)
    sheet = build_sheet(data)
    decay = sheet["ic_decay"].set_index("horizon")
    assert decay.loc[5, "ic"] == pytest.approx(metrics["ic_mean"], abs=1e-12) and decay.loc[5, "dof"] > 0
    assert sheet["event_study"]["day"].max() == 10 and "5-session label" in _svg(
        build_report(run)["html"].read_text(encoding="utf-8"), "event_study"
    )
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(run / "predictions.parquet", bare / "predictions.parquet")
    run_backtest(bare)
    paths = build_report(bare)
    text = paths["html"].read_text(encoding="utf-8")
    assert "Event study left out" in text and 'id="fig-cumulative"' in text


def test_ticker_contributions_add_up_to_the_book(sheets):
    data, sheet = sheets["cs"]
    daily = data.tables["daily"]
    assert sheet["per_ticker"]["contribution"].sum() == pytest.approx(daily["gross"].sum(), rel=1e-9)
    assert sheet["publication"]["n"].sum() == len(data.articles)
    assert sheet["phenomena"].set_index("kind").loc["all", "n"] == len(data.articles)
