"""``newsalpha demo``: the whole pipeline on the embedded data and the embedded MiniLM, stage by stage.

Each stage prints the ``newsalpha`` command a user would type for it, so the demo is also a worked example;
fit, export and predict run as the library functions those commands call (:func:`newsalpha.fit`,
:func:`newsalpha.export`, :func:`newsalpha.predict`), the other stages through their commands. Each stage's
inputs (configs, upstream files) are hashed; a second run with the same hashes skips the stage and says so.

Two studies:

1. ``synth``: the synthetic market with a planted signal (cross-sectional long-short): the fine-tuned model
   must find it, and the report compares it with TF-IDF + ridge and frozen embeddings + ridge.
2. ``tweets``: the real tweets x S&P 500 (time-series mode): the honest result, whatever it is.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from data_pipelines.contracts import PAIRS_FILE, RunLayout
from data_pipelines.errors import ConfigError, NewsalphaError
from data_pipelines.io import hash_file, write_json_atomic, write_text_atomic

log = logging.getLogger(__name__)

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


@dataclass
class Stage:
    """One demo stage: the command line it stands for, how it runs, the files it reads and must leave.

    ``call`` runs the stage; without it the command line itself runs through :func:`newsalpha.cli.main`.
    """

    name: str
    argv: list[str]
    inputs: Sequence[Path]
    outputs: Sequence[Path]
    call: Callable[[], Any] | None = None


def _key(stage: Stage) -> str:
    h = hashlib.sha256(json.dumps(stage.argv).encode())
    for path in stage.inputs:
        h.update(str(path).encode())
        h.update(hash_file(path).encode() if path.is_file() else b"missing")
    return h.hexdigest()


class StageRunner:
    """Run stages in order, skipping those whose inputs and command are unchanged since the last success."""

    def __init__(self, out: Path, echo: Callable[[str], None] = print):
        self.cache = out / ".stages"
        self.echo = echo
        self.timings: dict[str, float] = {}
        self.cached: list[str] = []

    def run(self, study: str, stage: Stage) -> None:
        from newsalpha.cli import main as cli_main

        key = _key(stage)
        record = self.cache / f"{study}-{stage.name}.json"
        self.echo(f"\n== {study}: {stage.name} ==\n$ newsalpha {shlex.join(stage.argv)}")
        if record.is_file() and json.loads(record.read_text())["key"] == key and all(p.exists() for p in stage.outputs):
            self.echo("   (cached: inputs and config unchanged, skipped)")
            self.cached.append(f"{study}:{stage.name}")
            return
        t0 = time.perf_counter()
        if stage.call is not None:
            stage.call()
        else:
            code = cli_main(stage.argv)
            if code:
                raise NewsalphaError(f"demo stage '{study}: {stage.name}' failed with exit code {code}")
        missing = [str(p) for p in stage.outputs if not p.exists()]
        if missing:
            raise NewsalphaError(f"demo stage '{study}: {stage.name}' did not write {', '.join(missing)}")
        self.timings[f"{study}:{stage.name}"] = round(time.perf_counter() - t0, 1)
        write_json_atomic({"key": key, "argv": stage.argv, "seconds": self.timings[f"{study}:{stage.name}"]}, record)


def _derive(src: Path, dst: Path, updates: dict[str, Any]) -> Path:
    """Write ``src`` with nested ``updates`` applied to ``dst`` (the demo's shrunken configs)."""
    cfg = yaml.safe_load(src.read_text(encoding="utf-8")) or {}

    def merge(a: dict, b: dict) -> dict:
        for k, v in b.items():
            a[k] = merge(dict(a.get(k) or {}), v) if isinstance(v, dict) else v
        return a

    write_text_atomic(yaml.safe_dump(merge(cfg, updates), sort_keys=False), dst)
    return dst


def model_stages(
    study: str, root: Path, pairs: Path, fit_cfg: Path, target: str, mode: str, embedding: bool
) -> list[Stage]:
    """fit -> export -> predict -> baselines -> evaluate, all inside ``root/fit`` (the evaluation run folder)."""
    from newsalpha.inference import predict
    from newsalpha.train.export import export
    from newsalpha.train.fit import fit

    layout = RunLayout(root / "fit")
    run, pairs_file = layout.root, pairs / PAIRS_FILE
    overrides = {"data": {"pairs_dir": str(pairs), "target": target}, "trainer": {"default_root_dir": str(run)}}
    fit_argv = ["fit", "--config", str(fit_cfg), "--data.pairs_dir", str(pairs), "--data.target", target]
    fit_stage = Stage(
        "fit",
        [*fit_argv, "--trainer.default_root_dir", str(run), "--overwrite", "true"],
        [fit_cfg, pairs_file],
        [layout.fit_record],
        call=lambda: fit(fit_cfg, overrides=overrides, overwrite=True),
    )
    export_stage = Stage(
        "export",
        ["export", "--ckpt", str(run)],
        [layout.fit_record],
        [layout.predictor / "newsalpha.json"],
        call=lambda: export(run),
    )
    predict_stage = Stage(
        "predict",
        ["predict", "--predictor", str(layout.predictor), "--pairs", str(pairs), "--out", str(layout.predictions)],
        [layout.predictor / "newsalpha.json", pairs_file],
        [layout.predictions],
        call=lambda: predict(layout.predictor, pairs, splits=("test",), out=layout.predictions),
    )
    base_argv = ["baselines", "--run", str(run), "--pairs", str(pairs), "--target", target]
    if embedding:
        base_argv += ["--embedding", "--backbone", "minilm"]
    baselines = Stage("baselines", base_argv, [pairs_file], [layout.baseline("tfidf_ridge")])
    evaluate = Stage(
        "evaluate",
        ["evaluate", "--run", str(run), "--pairs", str(pairs), "--target", target, "--mode", mode],
        _LazyGlob(layout.predictions, layout.baselines),
        [layout.metrics, layout.report_html],
    )
    return [fit_stage, export_stage, predict_stage, baselines, evaluate]


class _LazyGlob(Sequence):
    """Inputs resolved when the stage runs (the baselines exist only by then)."""

    def __init__(self, first: Path, folder: Path):
        self.first, self.folder = first, folder

    def _items(self) -> list[Path]:
        return [self.first, *sorted(self.folder.glob("*.parquet"))]

    def __getitem__(self, i):  # type: ignore[override]
        return self._items()[i]

    def __len__(self) -> int:
        return len(self._items())


QUICK_SYNTH = {"n_tickers": 6, "n_sessions": 60, "articles_per_session": 6}
QUICK_FIT = {
    "trainer": {
        "max_epochs": 1,
        "limit_train_batches": 8,
        "limit_val_batches": 4,
        "callbacks": None,
    },
    "data": {"max_length": 32, "batch_size": 8},
}


def _pairs_stage(config: Path, inputs: Sequence[Path], pairs: Path) -> Stage:
    return Stage(
        "pairs",
        ["pairs", "--config", str(config), "--out", str(pairs)],
        [config, *inputs],
        [pairs / "pairs.parquet", pairs / "manifest.json"],
    )


def synth_stages(out: Path, quick: bool) -> list[Stage]:
    root = out / "synth"
    synth_cfg = CONFIGS / "synth" / "demo.yaml"
    fit_cfg = CONFIGS / "fit" / "demo_synth.yaml"
    if quick:
        synth_cfg = _derive(synth_cfg, out / "configs" / "synth_quick.yaml", QUICK_SYNTH)
        fit_cfg = _derive(fit_cfg, out / "configs" / "fit_synth_quick.yaml", QUICK_FIT)
    market, pairs = root / "market", root / "pairs"
    stages = [
        Stage(
            "synth", ["synth", "--config", str(synth_cfg), "--out", str(market)], [synth_cfg], [market / "pairs.yaml"]
        ),
        _pairs_stage(market / "pairs.yaml", [market / "news.parquet", market / "prices.parquet"], pairs),
    ]
    return stages + model_stages("synth", root, pairs, fit_cfg, "exret_h1", "cross_section", embedding=not quick)


def tweets_stages(out: Path, quick: bool) -> list[Stage]:
    root = out / "tweets"
    pairs_cfg = CONFIGS / "pairs" / "tweets_sp500.yaml"
    fit_cfg = CONFIGS / "fit" / "demo_tweets.yaml"
    if quick:
        fit_cfg = _derive(fit_cfg, out / "configs" / "fit_tweets_quick.yaml", QUICK_FIT)
    pairs = root / "pairs"
    stages = [_pairs_stage(pairs_cfg, [], pairs)]
    return stages + model_stages("tweets", root, pairs, fit_cfg, "ret_h1", "time_series", embedding=False)


SUMMARY_KEYS = (
    ("IC", "ic_mean", "{:+.3f}"),
    ("IC t (HAR)", "ic_tstat", "{:+.2f}"),
    ("L-S t (HAR)", "ls_tstat", "{:+.2f}"),
    ("Sharpe net", "ls_sharpe_net", "{:+.2f}"),
    ("timing t vs hold (TS)", "timing_tstat", "{:+.2f}"),
    ("OOS R2 vs 0", "oos_r2_zero", "{:+.4f}"),
    ("hit rate", "hit_rate", "{:.3f}"),
    ("predictions", "n_predictions", "{:d}"),
)


def _fmt(fmt: str, value: Any) -> str:
    try:
        return fmt.format(int(value) if fmt == "{:d}" else float(value))
    except (TypeError, ValueError):
        return "n/a"


def summary_table(metrics: dict[str, dict[str, Any]]) -> str:
    """The terminal summary: one column per study, plus DM against TF-IDF and the verdict."""
    names = list(metrics)
    lines = [f"{'':<24}" + "".join(f"{n:>22}" for n in names)]
    for label, key, fmt in SUMMARY_KEYS:
        lines.append(f"{label:<24}" + "".join(f"{_fmt(fmt, metrics[n].get(key)):>22}" for n in names))
    dm = [(metrics[n].get("baselines") or {}).get("tfidf_ridge", {}) for n in names]
    lines.append(
        f"{'DM vs TF-IDF (p)':<24}"
        + "".join(
            f"{_fmt('{:+.2f}', d.get('dm_stat')) + ' (' + _fmt('{:.3f}', d.get('dm_pvalue')) + ')':>22}" for d in dm
        )
    )
    for n in names:
        lines.append(f"{n}: {metrics[n].get('verdict', 'no verdict')}")
    return "\n".join(lines)


def run_demo(
    out: str | Path = "runs/demo",
    *,
    quick: bool = False,
    studies: Sequence[str] = ("synth", "tweets"),
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the demo studies into ``out``; returns the metrics per study, the report paths and stage timings."""
    out = Path(out)
    runner = StageRunner(out, echo)
    builders = {"synth": synth_stages, "tweets": tweets_stages}
    unknown = [s for s in studies if s not in builders]
    if unknown:
        raise ConfigError(f"unknown demo study '{unknown[0]}' (use {', '.join(builders)})")
    t0 = time.perf_counter()
    metrics, reports = {}, {}
    for study in studies:
        for stage in builders[study](out, quick):
            runner.run(study, stage)
        run = out / study / "fit"
        metrics[study] = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
        reports[study] = run / "report.html"
    wall = time.perf_counter() - t0
    echo("\n== summary ==\n" + summary_table(metrics))
    for study, path in reports.items():
        echo(f"report ({study}): {path.resolve()}")
    if runner.cached:
        echo(f"cached stages reused: {', '.join(runner.cached)}")
    echo(f"demo wall time: {wall:.0f} s")
    result = {
        "metrics": metrics,
        "reports": {k: str(v) for k, v in reports.items()},
        "timings": runner.timings,
        "cached": runner.cached,
        "wall_seconds": round(wall, 1),
    }
    write_json_atomic(result, out / "demo.json")
    return result
