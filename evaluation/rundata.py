"""Everything a report reads from a run folder, in one object: :class:`RunData` and :func:`load_run`.

A run folder after ``newsalpha backtest`` holds ``metrics.json``, the evaluation tables
(``evaluation/*.parquet``), ``predictions.parquet`` and ``baselines/*.parquet``; its metrics name the pairs
file, whose ``manifest.json`` names the price source, the calendar and (for a synthetic market) the folder
of ``truth.parquet``. The fit's ``config.yaml``, ``newsalpha.json`` and Lightning's ``logs/version_*/metrics.csv``
give the run facts and training curves. Anything missing is ``None`` and its part of the report is left out
with a note; a file that exists but is broken is a named error.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_pipelines.contracts import MANIFEST_FILE, Label, RunLayout
from data_pipelines.errors import DataContractError, NewsalphaError
from evaluation.baselines import read_pairs
from evaluation.inputs import read_baselines, read_metadata, read_predictions, resolve_label, split_finite
from evaluation.outputs import TABLES

log = logging.getLogger(__name__)

TRUTH_FILE = "truth.parquet"  # data_pipelines.synthetic.io.TRUTH_FILE (not imported: evaluation reads files only)
PAIRS_EXTRA = ("published_at", "published_after_close", "entry_kind", "entry_at", "text")
GENERIC_FOLDERS = frozenset({"fit", "run", "runs", "model", "eval", "evaluation", "predictor", "out", "output", "."})


@dataclass
class RunData:
    """A run folder's inputs to the report.

    Attributes
    ----------
    metrics : dict
        ``metrics.json``.
    tables : dict
        The evaluation tables by name (``daily``, ``quantiles``, ``per_year``, ``cost_curve``, ``quarantine``).
    articles : DataFrame
        The model's finite test predictions (``article_id, ticker, session, prediction, target``), joined with
        the pairs' publication time, entry print and text where the pairs file is readable.
    pairs : DataFrame or None
        The test split of the pairs (keys, labels and what :data:`PAIRS_EXTRA` names).
    baselines : dict
        Name -> finite test predictions of each baseline.
    """

    run_dir: Path
    metrics: dict[str, Any]
    tables: dict[str, pd.DataFrame]
    articles: pd.DataFrame
    pairs: pd.DataFrame | None
    baselines: dict[str, pd.DataFrame]
    label: Label
    manifest: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def context(self) -> dict[str, Any]:
        return self.metrics.get("context") or {}

    @property
    def mode(self) -> str:
        return str(self.metrics.get("mode") or (self.context.get("options") or {}).get("mode") or "cross_section")

    @property
    def horizon(self) -> int:
        return int(self.metrics.get("horizon") or 1)

    @property
    def target(self) -> str:
        return self.label.column

    @property
    def periods(self) -> float:
        """Sessions per year the headline Sharpe uses (``metrics.periods_per_year``, else ``252 / h``)."""
        from evaluation.stats import TRADING_DAYS

        return float(self.metrics.get("periods_per_year") or TRADING_DAYS / self.horizon)

    @property
    def calendar(self) -> str:
        return str(market_facts(self.manifest).get("calendar") or "XNYS")


def market_facts(manifest: dict[str, Any]) -> dict[str, Any]:
    """Calendar and benchmark of the pairs: the manifest's ``prices`` section, else its labels config."""
    labels = (manifest.get("config") or {}).get("labels") or {}
    return {**labels, **(manifest.get("prices") or {})}


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; a broken file is a named error."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataContractError(f"not valid JSON ({err.msg}, line {err.lineno})", file=str(path)) from err


def read_tables(run_dir: Path) -> dict[str, pd.DataFrame]:
    """The evaluation tables written by the backtest step (missing ones are left out)."""
    folder = RunLayout(run_dir).evaluation
    return {n: pd.read_parquet(p) for n in (*TABLES, "quarantine") if (p := folder / f"{n}.parquet").is_file()}


def read_manifest(run_dir: Path, metrics: dict[str, Any]) -> dict[str, Any]:
    """The pairs manifest: beside the pairs file the backtest used, else in the run; ``{}`` if none."""
    pairs_file = (metrics.get("context") or {}).get("pairs_file")
    for cand in ([Path(pairs_file).parent / MANIFEST_FILE] if pairs_file else []) + [run_dir / MANIFEST_FILE]:
        if cand.is_file():
            return read_json(cand)
    return {}


def read_config(run_dir: Path) -> dict[str, Any]:
    """The fit's saved LightningCLI ``config.yaml`` as a mapping (``{}`` if none)."""
    import yaml

    path = run_dir / "config.yaml"
    if not path.is_file():
        return {}
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise DataContractError(f"not valid YAML ({err})", file=str(path)) from err


def read_test_pairs(pairs_file: str | None, label: Label) -> pd.DataFrame | None:
    """The test split of the pairs, with its keys, every label of the label's kind and the report's extra columns."""
    if not pairs_file or not Path(pairs_file).is_file():
        return None
    kind = f"{label.kind}_h"

    def wanted(c: str) -> bool:
        is_label = c.startswith(kind) and c[len(kind) :].isdigit()
        return c in ("article_id", "ticker", "session", "split", *PAIRS_EXTRA) or is_label

    pairs = read_pairs(pairs_file, columns=wanted)
    if "split" in pairs:
        pairs = pairs[pairs["split"] == "test"]
    pairs = pairs.assign(session=pd.to_datetime(pairs["session"]))
    return pairs.reset_index(drop=True)


def join_articles(preds: pd.DataFrame, pairs: pd.DataFrame | None) -> pd.DataFrame:
    """Predictions with the pairs' publication time, entry print and text (matched on article and ticker)."""
    cols = ["article_id", "ticker", "session", "prediction", "target"]
    out = preds[cols].copy()
    if pairs is None:
        return out
    extra = [c for c in PAIRS_EXTRA if c in pairs and c not in out]
    right = pairs[["article_id", "ticker", *extra]].drop_duplicates(["article_id", "ticker"])
    return out.merge(right, on=["article_id", "ticker"], how="left")


def study_name(run_dir: Path, context: dict[str, Any]) -> str:
    """The study a run belongs to: ``context.study``, else the nearest folder name that is not generic."""
    if context.get("study"):
        return str(context["study"])
    for part in (run_dir, *run_dir.parents):
        if part.name and part.name.lower() not in GENERIC_FOLDERS:
            return part.name
    return run_dir.resolve().name or "run"


def truth_table(manifest: dict[str, Any]) -> pd.DataFrame | None:
    """A synthetic market's ``truth.parquet``, found beside the news file the pairs were built from."""
    news = ((manifest.get("inputs") or {}).get("news") or {}).get("path")
    if not news:
        return None
    path = Path(news).parent / TRUTH_FILE
    return pd.read_parquet(path) if path.is_file() else None


def training_log(run_dir: Path) -> pd.DataFrame | None:
    """Per epoch ``train_loss`` (mean of the logged steps), ``val_loss``, ``val_mse``, ``val_ic``, ``val_rank_ic``.

    Read from the newest ``logs/version_*/metrics.csv`` (Lightning's CSV logger) that has validation rows.
    """
    for path in sorted((run_dir / "logs").glob("version_*/metrics.csv"), key=lambda p: p.stat().st_mtime)[::-1]:
        frame = pd.read_csv(path)
        if "epoch" not in frame or not any(c.startswith("val_") for c in frame.columns):
            continue
        cols = [c for c in ("train_loss", "val_loss", "val_mse", "val_ic", "val_rank_ic") if c in frame]
        out = frame.groupby("epoch")[cols].mean().reset_index()
        return out.dropna(subset=[c for c in cols if c.startswith("val_")], how="all")
    return None


def load_run(run_dir: str | os.PathLike) -> RunData:
    """Read a run folder after ``newsalpha backtest`` (see the module docstring).

    Raises
    ------
    DataContractError
        No ``metrics.json`` (run the backtest first), or a file that exists but cannot be read.
    """
    layout = RunLayout(run_dir)
    if not layout.metrics.is_file():
        raise DataContractError("no metrics.json: run `newsalpha backtest --run DIR` first", file=str(layout.metrics))
    metrics = read_json(layout.metrics)
    ctx = metrics.get("context") or {}
    meta = read_metadata(layout)
    label = (
        Label.from_dict(ctx["label"])
        if ctx.get("label")
        else resolve_label(layout.predictions, ctx.get("target"), meta)
    )
    preds, _ = split_finite(read_predictions(layout.predictions), "model")
    pairs = read_test_pairs(ctx.get("pairs_file"), label)
    try:
        baselines, _ = read_baselines(layout, label)
    except NewsalphaError as err:  # a broken baseline file must not hide the model's report
        log.warning("baselines not shown: %s", err)
        baselines = {}
    return RunData(
        run_dir=layout.root,
        metrics=metrics,
        tables=read_tables(layout.root),
        articles=join_articles(preds, pairs),
        pairs=pairs,
        baselines=baselines,
        label=label,
        manifest=read_manifest(layout.root, metrics),
        meta=meta,
        config=read_config(layout.root),
    )


def unit_table(articles: pd.DataFrame, labels: dict[int, pd.Series] | None = None) -> pd.DataFrame:
    """One row per (session, ticker[, entry_kind]): the mean prediction (the backtest's signal) and mean labels.

    ``ret`` is the mean ``target``; ``labels`` adds ``h{h}`` columns (one realised label per article, aligned
    to ``articles``) for the IC decay.
    """
    keys = ["session", "ticker"] + (["entry_kind"] if "entry_kind" in articles else [])
    df = articles[[*keys, "prediction", "target"]].rename(columns={"target": "ret"})
    for h, values in (labels or {}).items():
        df[f"h{h}"] = np.asarray(values, float)
    return df.groupby(keys, sort=True, observed=True).mean().reset_index()
