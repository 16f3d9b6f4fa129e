"""Fine-tuning recipes against the baselines on zoo markets: which recipe to ship, and what it reaches.

Each market is a synthetic zoo market (:func:`data_pipelines.synthetic.zoo.zoo_params`) named by its seed,
written and paired through the ordinary files. On each market, in the same run:

* the baselines: TF-IDF (1-2 grams) + ridge (``evaluation.baselines``), frozen MiniLM embeddings + ridge
  (``newsalpha.embedding_baseline``, max length 64), the zero-shot general model (``newsalpha.zeroshot``,
  SmolLM2-135M-Instruct) and the oracle (the planted effect itself);
* each recipe: ``newsalpha fit`` with its YAML config and overrides, every epoch's checkpoint kept; the test
  split is predicted from the checkpoint the recipe selects (by its ``checkpoint.monitor``), and, for the
  evidence on selection, from the best epoch by ``val_mse`` and from the last one, each through
  ``newsalpha.export`` and ``newsalpha.predict`` (the path a user ships).

Scored on the test rows: pooled IC (Pearson, with the label), mean per-session IC and its Newey-West t, the
share of the oracle's IC, Diebold-Mariano on squared error against TF-IDF and against the embeddings
(errors averaged per session; positive = the recipe is better), MSE, fit time and its cost per 1,000
training articles per epoch.

Seeds: recipes are compared and chosen on the TUNE seeds only. The REPORT seeds are fixed here and are never
used to choose anything: ``report`` runs exactly one recipe (the chosen default) on them, once, and refuses to
overwrite its result. Nothing in ``tune`` reads a report market.

    python benchmarks/bench_recipe.py tune --recipe full --recipe full_lpft     # append to recipe_tune.json
    python benchmarks/bench_recipe.py report --recipe default                   # once: recipe_report.json
    python benchmarks/bench_recipe.py report --recipe wise --set 2              # a later recipe, fresh seeds
    python benchmarks/bench_recipe.py prepare --seeds 901 902                   # markets + baselines, no scores
    python benchmarks/bench_recipe.py collect                                   # recipe_tune.json from the cache
    python benchmarks/bench_recipe.py table                                     # the evidence tables

Markets, fits and baseline predictions are cached under ``runs/bench_recipe/`` (a fit is redone only when its
recipe changes). CPU only: one fit at a time, ``--threads`` torch threads (default 1: on a machine shared by
several jobs, one thread per process ran a full fine-tuning step twice as fast as two).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from data_pipelines.contracts import Label  # noqa: E402
from data_pipelines.io import write_json_atomic, write_predictions  # noqa: E402

TARGET = "exret_h1"
WORK = ROOT / "runs" / "bench_recipe"
RESULTS = ROOT / "benchmarks" / "results"
TUNE_SEEDS = (101, 102, 103)  # recipes are chosen on these
# REPORT_SEEDS: never used to choose anything, one run of the chosen recipe each. The first session cut them from
# (901, ..., 905) to the first two before any report market was scored or fitted (~30 min per fit on the shared
# machine). The next session ran 903-905 with the recipe unchanged (``report`` refuses another recipe or config
# digest than the one already reported): they extend the evidence, they were not chosen after 901-902 were seen.
REPORT_SEEDS = (901, 902, 903, 904, 905)
# A recipe change is reported on fresh seeds, never on a report set already seen: each set reports one recipe.
# Set 2 (906-910) was fixed before any of its markets was written, when WiSE-FT was a candidate on the tune seeds;
# it reports the default that ships its last epoch (chosen on the tune seeds; set 1's last-epoch column had been
# seen by then, which is why it is not the evidence).
# Set 3 (911-915) was fixed before any of its markets was written, while bf16 autocast and top_layers were
# candidates on the tune seeds: it reports whichever default those tune fits choose, once.
REPORT_SETS = {1: REPORT_SEEDS, 2: (906, 907, 908, 909, 910), 3: (911, 912, 913, 914, 915)}
ALL_REPORT_SEEDS = tuple(s for seeds in REPORT_SETS.values() for s in seeds)
# SIZE: one market design (a seed of SIZE_SEEDS: every property but the size drawn from it) at several sizes, fitted
# with the default after the report: "does the fine-tune beat TF-IDF above N articles?". It chooses nothing.
# 951 drifts (at 73.8%); 955, the first seed after it whose market does not drift (picked on its design before
# anything was fitted on it), asks the same question without the drift.
# 959, the first seed after 955 without a drift (picked the same way), repeats 955's question on another design.
# 960 was meant as the first seed after 959 without a drift, but was picked with zoo_params' default ranges, not
# REPORT_MARKETS' (under which it drifts, at 73.1%): its row is a second drift design, reported as such. 962 is the
# first seed after 959 without a drift under REPORT_MARKETS' ranges, picked on its design before anything was
# fitted on it. Both were fitted with the bf16 default.
SIZE_SEEDS = (951, 955, 959, 960, 962)
SIZE_ARTICLES = (2_500, 10_000)
TUNE_MARKETS = {"articles": (2_000, 3_000), "tickers": (20, 60), "signal": (0.25, 0.5)}
REPORT_MARKETS = {"articles": (2_000, 3_000), "tickers": (20, 60), "signal": (0.25, 0.5)}
EMB_MAX_LENGTH = 64
ZS_CALIBRATION_ROWS = 300

FIT = "configs/fit"
LPFT = "--trainer.callbacks+=newsalpha.train.recipe.RidgeHeadInit"
CAL = "--trainer.callbacks+=newsalpha.train.recipe.CalibrateHeadOnVal"
EMA = ["--trainer.callbacks+=lightning.pytorch.callbacks.EMAWeightAveraging", "--trainer.callbacks.decay=0.98"]
LORA_QV = '{"r": 16, "lora_alpha": 32, "lora_dropout": 0.05}'
LORA_ALL = '{"r": 16, "lora_alpha": 32, "lora_dropout": 0.05, "target_modules": ["query", "key", "value", "dense"]}'


def _lora_lpft_cal(lora: str) -> list[str]:
    """Overrides of ``recipe_full.yaml`` for LoRA ``lora`` at lr 1e-3 (head 3e-3), probe first, calibrated."""
    lr = ["--model.lr", "1e-3", "--model.head_lr", "3e-3"]
    return [LPFT, CAL, "--model.finetune", "lora", "--model.lora", lora, *lr]


RECIPES: dict[str, tuple[str, list[str]]] = {  # name -> (config, overrides); callbacks run in the order listed
    "lora_default": (f"{FIT}/minilm_lora.yaml", []),  # the README's own-data default, as it is
    # the demo's config: the recipe with LoRA r=16 (before issue 12's recipe: val_mse selection, no probe and no
    # calibration; that row is kept in the results as demo_lora_v0)
    "demo_lora": (f"{FIT}/demo_synth.yaml", []),
    "full": (f"{FIT}/recipe_full.yaml", []),  # full fine-tune, 6 epochs to lr 0, val IC selection
    "full_lpft": (f"{FIT}/recipe_full.yaml", [LPFT]),  # + head initialised by ridge on frozen features
    "lpft_cal": (f"{FIT}/recipe_full.yaml", [LPFT, CAL]),  # + head rescaled by the validation line
    "lpft_cal_lr1e-4": (f"{FIT}/recipe_full.yaml", [LPFT, CAL, "--model.lr", "1e-4"]),
    "lpft_cal_huber": (f"{FIT}/recipe_full.yaml", [LPFT, CAL, "--model.loss", "huber"]),
    "lpft_ema_cal": (f"{FIT}/recipe_full.yaml", [LPFT, *EMA, CAL]),
    # the default (minilm_recipe.yaml = lpft_cal_lr1e-4) plus EMA of the weights: EMA before CAL, so the saved
    # checkpoint's averaged head is the one calibrated (EMA's on_save_checkpoint replaces the state dict)
    "ema_lr1e-4": (f"{FIT}/recipe_full.yaml", [LPFT, *EMA, CAL, "--model.lr", "1e-4"]),
    "lpft_cal_8ep": (f"{FIT}/recipe_full.yaml", [LPFT, CAL, "--trainer.max_epochs", "8"]),
    # the demo's LoRA (r=16 on query/value, lr 1e-3) with LP-FT, val IC selection, calibration; then all linear layers
    "lora_lpft_cal": (f"{FIT}/recipe_full.yaml", _lora_lpft_cal(LORA_QV)),
    "lora_all_lpft_cal": (f"{FIT}/recipe_full.yaml", _lora_lpft_cal(LORA_ALL)),
    # the default with WiSE-FT (alpha 0.5, the paper's): the fine-tune averaged in weight space with its start
    "wise": (f"{FIT}/minilm_recipe_wise.yaml", []),
    # only the top 3 of MiniLM's 6 layers adapt (embeddings and layers 0-2 frozen): the backward pass stops at
    # layer 3, so a step costs less; the default's full fine-tune, then the demo's LoRA
    "top3": (f"{FIT}/minilm_recipe.yaml", ["--model.top_layers", "3"]),
    "demo_top3": (f"{FIT}/demo_synth.yaml", ["--model.top_layers", "3"]),
    # ... and in 4 epochs instead of 6 (the schedule still ends at lr 0): the demo's 3-minute budget
    "demo_top3_e4": (f"{FIT}/demo_synth.yaml", ["--model.top_layers", "3", "--trainer.max_epochs", "4"]),
    # bf16 autocast on the CPU (Lightning's bf16-mixed: fp32 master weights, bf16 matrix products): the same
    # recipes at about half the step time on a CPU with native bf16 (benchmarks/bench_step.py)
    "demo_bf16": (f"{FIT}/demo_synth.yaml", ["--trainer.precision", "bf16-mixed"]),
    "bf16": (f"{FIT}/minilm_recipe.yaml", ["--trainer.precision", "bf16-mixed"]),
    "default": (f"{FIT}/minilm_recipe.yaml", []),  # `newsalpha fit`'s default (what `report` runs)
}


# -- markets and baselines ------------------------------------------------------------------------------------


def market(seed: int, spec: dict, name: str | None = None) -> Path:
    """Write zoo market ``seed`` and its pairs under ``WORK/markets/<name or seed>`` (once)."""
    from data_pipelines.pairs import build_pairs_from_config
    from data_pipelines.synthetic.io import write_market
    from data_pipelines.synthetic.market import make_market
    from data_pipelines.synthetic.zoo import zoo_params

    folder = WORK / "markets" / (name or str(seed))
    if (folder / "pairs" / "manifest.json").is_file():
        return folder
    params = zoo_params(seed, **spec)
    paths = write_market(make_market(**params), folder, "parquet", {"splits": {"fractions": [0.6, 0.2, 0.2]}})
    build_pairs_from_config(paths["pairs_config"], out=folder / "pairs")
    return folder


def test_rows(folder: Path) -> pd.DataFrame:
    """The test rows with their label and the planted effect (the oracle's prediction)."""
    pairs = pd.read_parquet(folder / "pairs" / "pairs.parquet")
    truth = pd.read_parquet(folder / "truth.parquet", columns=["article_id", "ticker", "effect"])
    test = pairs[(pairs["split"] == "test") & pairs[TARGET].notna()]
    return test[["article_id", "ticker", "session", TARGET]].merge(truth, on=["article_id", "ticker"])


def baselines(folder: Path) -> dict[str, pd.DataFrame]:
    """TF-IDF + ridge, embeddings + ridge and zero-shot predictions of the test split (cached), and their costs."""
    from evaluation.baselines import tfidf_ridge_baseline
    from newsalpha.embedding_baseline import embedding_ridge_baseline
    from newsalpha.zeroshot import zero_shot_baseline

    out, pairs = {}, None
    makers = {
        "tfidf_ridge": lambda p: tfidf_ridge_baseline(p, TARGET),
        "embedding_ridge": lambda p: embedding_ridge_baseline(p, TARGET, max_length=EMB_MAX_LENGTH),
        "zero_shot": lambda p: zero_shot_baseline(p, TARGET, max_calibration_rows=ZS_CALIBRATION_ROWS, batch_size=16),
    }
    for name, make in makers.items():
        path = folder / "baselines" / f"{name}.parquet"
        if not path.is_file():
            pairs = pd.read_parquet(folder / "pairs" / "pairs.parquet") if pairs is None else pairs
            t0 = time.perf_counter()
            preds, info = make(pairs)
            info = {k: v for k, v in info.items() if k != "val_mse"}
            write_predictions(preds, path, Label.parse(TARGET))
            write_json_atomic({**info, "seconds": round(time.perf_counter() - t0, 1)}, path.with_suffix(".json"))
        out[name] = pd.read_parquet(path)
    return out


# -- fitting: the one place that calls the fit API ------------------------------------------------------------


def run_fit(config: str, overrides: list[str], pairs_dir: Path, run_dir: Path) -> dict[str, float]:
    """``newsalpha fit`` in a subprocess, every epoch's checkpoint kept; its wall and CPU (user + sys) seconds
    and the 1-minute load average before and after (the machine is shared: wall time depends on the load).

    The one call to the fit API (switch to ``newsalpha.fit(config)`` here when it exists).
    """
    cmd = [sys.executable, "-m", "newsalpha.cli", "fit", "--config", str(ROOT / config), *overrides]
    cmd += ["--data.pairs_dir", str(pairs_dir), "--trainer.default_root_dir", str(run_dir)]
    cmd += [
        "--checkpoint.save_top_k",
        "-1",
        "--checkpoint.filename",
        "{epoch}",
        "--trainer.enable_progress_bar",
        "false",
    ]
    load0, cpu0, t0 = os.getloadavg()[0], _children_cpu(), time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True)
    seconds, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
    (run_dir / "fit.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"fit failed ({done.returncode}); see {run_dir / 'fit.log'}:\n{done.stderr[-2000:]}")
    return {"wall": seconds, "cpu": cpu, "load_start": load0, "load_end": os.getloadavg()[0]}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def predict_checkpoints(run_dir: Path, ckpts: dict[str, Path], pairs_dir: Path) -> dict[str, pd.DataFrame]:
    """Predict the test split from each named checkpoint the way a user ships one: ``newsalpha.export`` to a
    predictor folder, then ``newsalpha.predict`` from it (one process for all; the folders are removed)."""
    outs = {name: run_dir / f"pred_{name}.parquet" for name in ckpts}
    script = (
        "import shutil, sys\nfrom newsalpha import export, predict\n"
        "for ck, out in zip(sys.argv[2::2], sys.argv[3::2]):\n"
        "    folder = export(ck, out + '.predictor')\n"
        "    predict(folder, sys.argv[1], splits=('test',), out=out, device='cpu')\n"
        "    shutil.rmtree(folder)\n"
    )
    args = [str(pairs_dir)] + [str(x) for n in ckpts for x in (ckpts[n], outs[n])]
    done = subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT, env=_env(), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"predict failed: {done.stderr[-2000:]}")
    return {name: pd.read_parquet(path) for name, path in outs.items()}


def _env() -> dict[str, str]:
    threads = os.environ.get("OMP_NUM_THREADS", "1")
    extra = {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    return {**os.environ, **extra, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def epoch_metrics(run_dir: Path) -> pd.DataFrame:
    """Validation metrics per epoch from the CSV logger."""
    frame = pd.read_csv(sorted((run_dir / "logs").glob("version_*/metrics.csv"))[-1])
    cols = [c for c in ("val_ic", "val_mse", "val_rank_ic") if c in frame]
    return frame.dropna(subset=["val_mse"]).groupby("epoch")[cols].last()


def selections(run_dir: Path) -> dict[str, Path]:
    """The checkpoint the recipe ships (its own monitor, else its last epoch), the best by val_mse, by val_ic, and
    the last."""
    import yaml

    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())["checkpoint"]
    metrics = epoch_metrics(run_dir)
    ckpt = lambda e: run_dir / "checkpoints" / f"epoch={int(e)}.ckpt"  # noqa: E731
    by = {
        "val_ic": metrics["val_ic"].idxmax(),
        "val_mse": metrics["val_mse"].idxmin(),
        "last": metrics.index.max(),
    }
    if not cfg.get("monitor"):  # no monitor: the recipe ships its last epoch
        own = by["last"]
    else:
        own = metrics[cfg["monitor"]].idxmax() if cfg["mode"] == "max" else metrics[cfg["monitor"]].idxmin()
    return {"selected": ckpt(own), **{k: ckpt(v) for k, v in by.items()}}


# -- scoring --------------------------------------------------------------------------------------------------


def score(pred: pd.DataFrame, test: pd.DataFrame, refs: dict[str, pd.DataFrame]) -> dict:
    """IC, per-session IC, share of the oracle, MSE and DM against each reference, on the test rows."""
    from evaluation.stats import daily_ic, diebold_mariano, newey_west_tstat

    keys = ["article_id", "ticker"]
    df = test.merge(pred[[*keys, "prediction"]], on=keys, validate="1:1")
    y, p = df[TARGET].to_numpy(float), df["prediction"].to_numpy(float)
    oracle = float(np.corrcoef(df["effect"], y)[0, 1])
    ic = float(np.corrcoef(p, y)[0, 1]) if np.std(p) > 0 else float("nan")
    per = daily_ic(df.rename(columns={TARGET: "ret"})[["session", "prediction", "ret"]]).dropna()
    out = {
        "n": len(df),
        "ic": round(ic, 4),
        "share_of_oracle": round(ic / oracle, 3),
        "session_ic": round(float(per.mean()), 4) if len(per) else None,
        "session_ic_t": round(float(newey_west_tstat(per.to_numpy())[1]), 2) if len(per) > 2 else None,
        "mse": float(np.mean((y - p) ** 2)),
    }
    for name, ref in refs.items():
        r = df[keys].merge(ref[[*keys, "prediction"]], on=keys, how="left")["prediction"].to_numpy(float)
        stat, pval = diebold_mariano(y - p, y - r, groups=df["session"].to_numpy())
        out[f"dm_vs_{name}"], out[f"dm_p_vs_{name}"] = round(stat, 2), float(f"{pval:.3g}")
    return out


def market_row(folder: Path, seed: int) -> dict:
    """The market's description and its baselines' scores."""
    info = json.loads((folder / "synth.json").read_text())["info"]
    test = test_rows(folder)
    base = baselines(folder)
    refs = {"tfidf": base["tfidf_ridge"], "embedding": base["embedding_ridge"]}
    oracle = test.assign(prediction=test["effect"])
    pairs = pd.read_parquet(folder / "pairs" / "pairs.parquet", columns=["split"])
    row = {
        "seed": seed,
        "params": {k: v for k, v in info["params"].items() if k not in ("mix", "garch", "idio_vol", "beta_range")},
        "articles": info["articles"],
        "splits": pairs["split"].value_counts().to_dict(),
        "oracle": score(oracle, test, refs),
    }
    for name, preds in base.items():
        row[name] = score(preds, test, refs)
        row[name]["seconds"] = json.loads((folder / "baselines" / f"{name}.json").read_text()).get("seconds")
    zs = base["zero_shot"].merge(test, on=["article_id", "ticker"])
    row["zero_shot"]["raw_score_ic"] = round(float(np.corrcoef(zs["score"], zs[TARGET])[0, 1]), 4)
    return row


def fit_row(recipe: str, folder: Path, seed: int, name: str | None = None) -> dict:
    """Fit ``recipe`` on the market (cached by the recipe's hash) and score its selected checkpoints."""
    config, overrides = RECIPES[recipe]
    digest = _digest(config, overrides)
    run_dir = WORK / "fits" / recipe / (name or str(seed))
    cached = run_dir / "result.json"
    if cached.is_file() and json.loads(cached.read_text()).get("digest") == digest:
        return json.loads(cached.read_text())
    timing = _finished_fit(run_dir, digest)
    if timing is None:  # a fit whose scoring failed is scored again without fitting it again
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir(parents=True)
        timing = {**run_fit(config, overrides, folder / "pairs", run_dir), "digest": digest}
        write_json_atomic(timing, run_dir / "timing.json")
    seconds = timing["wall"]
    chosen = selections(run_dir)
    unique = {str(p): p for p in chosen.values()}
    preds = predict_checkpoints(run_dir, {Path(k).stem: v for k, v in unique.items()}, folder / "pairs")
    test, base = test_rows(folder), baselines(folder)
    refs = {"tfidf": base["tfidf_ridge"], "embedding": base["embedding_ridge"], "zero_shot": base["zero_shot"]}
    n_train = int((pd.read_parquet(folder / "pairs" / "pairs.parquet", columns=["split"])["split"] == "train").sum())
    metrics = epoch_metrics(run_dir)
    row = {
        "recipe": recipe,
        "seed": seed,
        "digest": digest,
        "config": config,
        "overrides": overrides,
        "fit_s": round(seconds, 1),
        "fit_cpu_s": round(timing["cpu"], 1),
        **({"timing_note": timing["note"]} if "note" in timing else {}),
        "load": [round(timing["load_start"], 1), round(timing["load_end"], 1)],
        "n_train": n_train,
        "s_per_1000_train": round(1000 * seconds / n_train, 1),
        "epochs": len(metrics),
        "s_per_1000_train_per_epoch": round(1000 * seconds / n_train / max(len(metrics), 1), 1),
        "epochs_val": {int(e): {k: round(float(v), 4) for k, v in r.items()} for e, r in metrics.iterrows()},
        "chosen_epoch": {k: int(p.stem.removeprefix("epoch=")) for k, p in chosen.items()},
    }
    for name, path in chosen.items():
        row[name] = score(preds[path.stem], test, refs)
    for ck in (run_dir / "checkpoints").glob("*.ckpt"):  # ~90 MB each: the scores are what we keep
        ck.unlink()
    write_json_atomic(row, cached)
    return row


def _finished_fit(run_dir: Path, digest: str) -> dict | None:
    """The timing of a finished fit of this recipe in ``run_dir`` whose checkpoints are all still there."""
    path = run_dir / "timing.json"
    if not (path.is_file() and (run_dir / "fit.json").is_file() and (run_dir / "checkpoints").is_dir()):
        return None
    timing = json.loads(path.read_text())
    return timing if timing.get("digest") == digest else None


def _digest(config: str, overrides: list[str]) -> str:
    """What a cached fit is keyed by: its config file's text and its overrides."""
    return hashlib.sha256(((ROOT / config).read_text() + json.dumps(overrides)).encode()).hexdigest()[:16]


# -- commands -------------------------------------------------------------------------------------------------


def _merge_results(path: Path, rows: list[dict], markets: list[dict]) -> dict:
    old = json.loads(path.read_text()) if path.is_file() else {"fits": [], "markets": []}
    keep = [r for r in old["fits"] if (r["recipe"], r["seed"]) not in {(x["recipe"], x["seed"]) for x in rows}]
    mk = {m["seed"]: m for m in old["markets"]} | {m["seed"]: m for m in markets}
    return {"fits": keep + rows, "markets": [mk[s] for s in sorted(mk)]}


def cmd_tune(recipes: list[str], seeds: list[int]) -> Path:
    bad = [s for s in seeds if s in ALL_REPORT_SEEDS]
    if bad:
        raise SystemExit(f"seeds {bad} are report seeds: tuning never reads them")
    rows, markets = [], []
    for seed in seeds:
        folder = market(seed, TUNE_MARKETS)
        markets.append(market_row(folder, seed))
        for recipe in recipes:
            t0 = time.perf_counter()
            rows.append(fit_row(recipe, folder, seed))
            print(f"tune {recipe} seed {seed}: {_line(rows[-1])} ({time.perf_counter() - t0:.0f} s)", flush=True)
    path = RESULTS / "recipe_tune.json"
    write_json_atomic({**_merge_results(path, rows, markets), "machine": _machine()}, path)
    return path


def report_path(report_set: int) -> Path:
    return RESULTS / ("recipe_report.json" if report_set == 1 else f"recipe_report_{report_set}.json")


def cmd_report(recipe: str, again: bool, report_set: int = 1) -> Path:
    """Fit ``recipe`` on every seed of report set ``report_set`` not yet in its results file (all of them with
    ``again``).

    A report seed runs once. Seeds added later run the recipe already reported, with the same config digest:
    the report is never a second choice. A set reports one recipe; a later recipe gets a fresh set.
    """
    if report_set not in REPORT_SETS:
        raise SystemExit(f"report set {report_set} is not one of {sorted(REPORT_SETS)}")
    path = report_path(report_set)
    old = json.loads(path.read_text()) if path.is_file() and not again else {"fits": [], "markets": []}
    config, overrides = RECIPES[recipe]
    digest = _digest(config, overrides)
    for row in old["fits"]:
        if (row["recipe"], row["digest"]) != (recipe, digest):
            raise SystemExit(
                f"{path} reports {row['recipe']} (digest {row['digest']}) on seed {row['seed']}; this run would add "
                f"{recipe} (digest {digest}): one recipe per report (pass --again to rerun every seed)"
            )
    done = {row["seed"] for row in old["fits"]}
    todo = [s for s in REPORT_SETS[report_set] if s not in done]
    if not todo:
        raise SystemExit(f"{path} has every report seed: they are run once (pass --again only to reproduce it)")
    rows, markets = list(old["fits"]), list(old["markets"])
    for seed in todo:
        folder = market(seed, REPORT_MARKETS)
        markets.append(market_row(folder, seed))
        rows.append(fit_row(recipe, folder, seed))
        print(f"report {recipe} seed {seed}: {_line(rows[-1])}", flush=True)
        # written after every seed: a stopped run keeps what it finished
        write_json_atomic({"recipe": recipe, "fits": rows, "markets": markets, "machine": _machine()}, path)
    return path


def cmd_size(recipe: str, sizes: list[int], seed: int = SIZE_SEEDS[0]) -> Path:
    """Fit ``recipe`` on the size series' market ``seed`` at each size (cached) -> recipe_size.json."""
    if seed not in SIZE_SEEDS:
        raise SystemExit(f"seed {seed} is not a size seed {SIZE_SEEDS}")
    path = RESULTS / "recipe_size.json"
    old = json.loads(path.read_text()) if path.is_file() else {"fits": [], "markets": []}
    rows, markets = [], []
    for n in sizes:
        name = f"{seed}-{n}"
        folder = market(seed, {**REPORT_MARKETS, "articles": (n, n)}, name)
        markets.append({**market_row(folder, seed), "market": name})
        rows.append({**fit_row(recipe, folder, seed, name), "market": name})
        print(f"size {recipe} {name}: {_line(rows[-1])}", flush=True)
        done = {r["market"] for r in rows}
        merged = {
            "recipe": recipe,
            "fits": [r for r in old["fits"] if r["market"] not in done] + rows,
            "markets": [m for m in old["markets"] if m["market"] not in done] + markets,
            "machine": _machine(),
        }
        write_json_atomic(merged, path)
    return path


PROBE_MAX_LENGTH = 128  # the default recipe's data.max_length: the features RidgeHeadInit fits its head on


def probe_row(folder: Path, fit: dict) -> dict:
    """The recipe's linear probe alone (``RidgeHeadInit``'s ridge path on the frozen pooled features, penalty by
    validation MSE) on one market, beside the fit that started from it.

    The fine-tune's trajectory does not depend on whether the probe is kept, so "ship the probe when its
    validation IC beats every fine-tuned epoch's" is scored exactly from the fit's recorded validation ICs.
    """
    from newsalpha.embedding_baseline import default_backbone, embed_texts
    from newsalpha.train.recipe import DEFAULT_RIDGE_ALPHAS, ridge_path

    t0 = time.perf_counter()
    pairs = pd.read_parquet(folder / "pairs" / "pairs.parquet")
    pairs = pairs[pairs[TARGET].notna()]
    part = {k: pairs[pairs["split"] == k] for k in ("train", "val", "test")}
    x = {k: embed_texts(v["text"].tolist(), default_backbone(), max_length=PROBE_MAX_LENGTH) for k, v in part.items()}
    y = {k: v[TARGET].to_numpy(float) for k, v in part.items()}
    coef, intercept, alpha, _ = ridge_path(x["train"], y["train"], x["val"], y["val"], DEFAULT_RIDGE_ALPHAS)
    val_ic = float(np.corrcoef(x["val"] @ coef + intercept, y["val"])[0, 1])
    pred = part["test"][["article_id", "ticker"]].assign(prediction=x["test"] @ coef + intercept)
    base = baselines(folder)
    refs = {"tfidf": base["tfidf_ridge"], "embedding": base["embedding_ridge"], "zero_shot": base["zero_shot"]}
    probe = score(pred, test_rows(folder), refs)
    ft_val = max(float(v["val_ic"]) for v in fit["epochs_val"].values())
    keep = val_ic > ft_val
    return {
        "market": fit.get("market", fit["seed"]),
        "fit_recipe": fit["recipe"],
        "probe": {**probe, "val_ic": round(val_ic, 4), "alpha": alpha},
        "fine_tune": {**fit["selected"], "val_ic": round(ft_val, 4)},
        "rule_ships": "probe" if keep else "fine_tune",
        "rule": probe if keep else fit["selected"],
        "seconds": round(time.perf_counter() - t0, 1),
    }


def cmd_probe() -> Path:
    """Score the probe and the keep-the-probe rule on every market with a fit of the default (or its twin)."""
    sources = [
        ("tune", RESULTS / "recipe_tune.json", ("default", "lpft_cal_lr1e-4")),
        ("report", RESULTS / "recipe_report.json", ("default",)),
        ("size", RESULTS / "recipe_size.json", ("default",)),
    ]
    out = RESULTS / "recipe_probe.json"
    done = {}  # rows of an earlier run, reused when the market's fit is the same one (same digest)
    if out.is_file():
        done = {(r["set"], str(r["market"]), r.get("fit_digest")): r for r in json.loads(out.read_text())["rows"]}
    rows = []
    for kind, path, recipes in sources:
        if not path.is_file():
            continue
        data = json.loads(path.read_text())
        seen = set()
        for fit in data["fits"]:
            key = fit.get("market", fit["seed"])
            if fit["recipe"] not in recipes or fit.get("stale") or key in seen:
                continue
            seen.add(key)
            folder = WORK / "markets" / str(key)
            cached = done.get((kind, str(key), fit["digest"]))
            rows.append(cached or {"set": kind, "fit_digest": fit["digest"], **probe_row(folder, fit)})
            r = rows[-1]
            print(
                f"probe {kind} {key}: probe IC {r['probe']['ic']:+.3f} (val {r['probe']['val_ic']:+.3f}), "
                f"fine-tune {r['fine_tune']['ic']:+.3f} (best val {r['fine_tune']['val_ic']:+.3f}) -> "
                f"{r['rule_ships']}",
                flush=True,
            )
    note = (
        "Considered after the report markets 901-905 had been seen (the embeddings beat the fine-tune on two): "
        "its rows on those markets are not a report; only fresh report seeds can be."
    )
    write_json_atomic({"note": note, "rows": rows, "machine": _machine()}, out)
    return out


def cmd_prepare(seeds: list[int]) -> None:
    """Write the markets and their baselines' predictions (cached), scoring nothing: a report market's baselines
    can be computed while tune fits run, and nothing about them is printed or read by ``tune``."""
    for seed in seeds:
        t0 = time.perf_counter()
        baselines(market(seed, REPORT_MARKETS if seed in ALL_REPORT_SEEDS else TUNE_MARKETS))
        print(f"prepared market {seed} ({time.perf_counter() - t0:.0f} s)", flush=True)


def _line(row: dict) -> str:
    s = row["selected"]
    return (
        f"IC {s['ic']:+.3f} ({100 * s['share_of_oracle']:.0f}% of oracle), DM vs TF-IDF {s['dm_vs_tfidf']:+.2f} "
        f"(p {s['dm_p_vs_tfidf']:.3g}), vs emb {s['dm_vs_embedding']:+.2f}, epoch {row['chosen_epoch']['selected']}, "
        f"{row['fit_s']:.0f} s"
    )


def table(path: Path) -> str:
    """Markdown, one row per market and predictor: IC, share of the oracle, DM against each baseline, fit cost.

    DM is on squared error, errors averaged per session, positive = the row predicts better; ``(p)`` two-sided.
    A fit row shows the checkpoint its recipe selects; ``(val_mse)`` / ``(last)`` rows show the other picks
    when they differ. Cost: wall seconds of the whole fit per 1,000 training articles (CPU seconds beside it).
    """
    data = json.loads(path.read_text())
    head = (
        "| market | predictor | IC | share of oracle | DM vs TF-IDF (p) | DM vs embeddings (p) | DM vs zero-shot (p) "
        "| fit s (CPU s) | s / 1k train |"
    )
    lines = [head, "|" + " --- |" * 9]

    def dm(r: dict, ref: str) -> str:
        value = r.get(f"dm_vs_{ref}")
        return f"{value:+.2f} ({r[f'dm_p_vs_{ref}']:.2g})" if value is not None and np.isfinite(value) else ""

    def line(label: str, name: str, r: dict, cost: str = " | ") -> str:
        cells = [label, name, f"{r['ic']:+.3f}", f"{100 * r['share_of_oracle']:.0f}%"]
        return "| " + " | ".join([*cells, dm(r, "tfidf"), dm(r, "embedding"), dm(r, "zero_shot")]) + f" | {cost} |"

    for m in data["markets"]:
        p = m["params"]
        key = m.get("market", m["seed"])
        label = f"{key}: {m['articles']:,} art., {m['splits'].get('train', 0):,} train, signal {p['signal']}"
        label += f", drift {p['drift_at']}" if p.get("drift_at") else ", no drift"
        for name in ("oracle", "tfidf_ridge", "embedding_ridge", "zero_shot"):
            lines.append(line(label, name, m[name]))
            label = ""
        for r in (r for r in data["fits"] if r.get("market", r["seed"]) == key):
            cpu = f" ({r['fit_cpu_s']:.0f})" if r.get("fit_cpu_s") else ""
            per_k = 1000 * r["fit_s"] / max(m["splits"].get("train", 1), 1)
            lines.append(
                line(
                    "",
                    f"{r['recipe']} (epoch {r['chosen_epoch']['selected']})",
                    r["selected"],
                    f"{r['fit_s']:.0f}{cpu} | {per_k:.0f}",
                )
            )
            for pick in ("val_mse", "last"):
                if r["chosen_epoch"][pick] != r["chosen_epoch"]["selected"]:
                    lines.append(line("", f"{r['recipe']} ({pick}: epoch {r['chosen_epoch'][pick]})", r[pick]))
    return "\n".join(lines)


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def summary(path: Path) -> str:
    """One line per market for the recipe a results file reports, then the issue's targets over its markets:
    the share of markets where DM against TF-IDF is positive with p < 0.05, and the mean share of the oracle IC."""
    data = json.loads(path.read_text())
    fits = {r.get("market", r["seed"]): r for r in data["fits"] if r["recipe"] == data.get("recipe", r["recipe"])}
    lines = [
        "| market | train | drift | oracle IC | TF-IDF | embeddings | zero-shot | fine-tune IC (share) "
        "| DM vs TF-IDF (p) | vs embeddings (p) | vs zero-shot (p) | oracle's DM vs TF-IDF (p) | fit s (CPU s) |",
        "|" + " --- |" * 13,
    ]
    wins, shares, beats_all, oracle_wins = 0, [], 0, 0
    for m in data["markets"]:
        key = m.get("market", m["seed"])
        r = fits.get(key)
        if r is None:
            continue
        sel, drift = r["selected"], m["params"].get("drift_at") or "none"
        ps = {ref: (sel.get(f"dm_vs_{ref}"), sel.get(f"dm_p_vs_{ref}")) for ref in ("tfidf", "embedding", "zero_shot")}
        wins += int(ps["tfidf"][0] > 0 and ps["tfidf"][1] < 0.05)
        beats_all += int(all(v > 0 and p < 0.05 for v, p in ps.values()))
        shares.append(sel["share_of_oracle"])
        oracle_wins += int(m["oracle"]["dm_vs_tfidf"] > 0 and m["oracle"]["dm_p_vs_tfidf"] < 0.05)
        cells = [str(key), f"{m['splits'].get('train', 0):,}", str(drift), f"{m['oracle']['ic']:.3f}"]
        cells += [f"{m[b]['ic']:+.3f}" for b in ("tfidf_ridge", "embedding_ridge", "zero_shot")]
        cells.append(f"{sel['ic']:+.3f} ({100 * sel['share_of_oracle']:.0f}%)")
        cells += [f"{v:+.2f} ({p:.2g})" for v, p in ps.values()]
        # the power check: the planted effect itself, tested the same way on the same rows
        cells.append(f"{m['oracle']['dm_vs_tfidf']:+.2f} ({m['oracle']['dm_p_vs_tfidf']:.2g})")
        cells.append(f"{r['fit_s']:.0f} ({r['fit_cpu_s']:.0f})")
        lines.append(_md_row(cells))
    n = len(shares)
    if n:
        lines.append(
            f"\n{data.get('recipe', '')}: DM vs TF-IDF positive with p < 0.05 on {wins} of {n} markets "
            f"({100 * wins / n:.0f}%; target 80%); mean share of the oracle IC {100 * np.mean(shares):.0f}% "
            f"(target 85%); beats TF-IDF, embeddings and zero-shot (each p < 0.05) on {beats_all} of {n}; "
            f"the oracle itself beats TF-IDF (p < 0.05) on {oracle_wins} of {n}"
        )
    return "\n".join(lines)


def probe_table(path: Path) -> str:
    """The probe alone against the fine-tune it started, and what the keep-the-probe rule ships, per market."""
    data = json.loads(path.read_text())
    lines = [
        "| set | market | probe val IC | probe test IC | fine-tune best val IC | fine-tune test IC | rule ships "
        "| rule's test IC |",
        "|" + " --- |" * 8,
    ]
    for r in data["rows"]:
        cells = [r["set"], str(r["market"]), f"{r['probe']['val_ic']:+.3f}", f"{r['probe']['ic']:+.3f}"]
        cells += [f"{r['fine_tune']['val_ic']:+.3f}", f"{r['fine_tune']['ic']:+.3f}", r["rule_ships"]]
        cells.append(f"{r['rule']['ic']:+.3f}")
        lines.append(_md_row(cells))
    return "\n".join(lines)


def cmd_collect(seeds: list[int]) -> Path:
    """``recipe_tune.json`` from every cached tune fit (a fit is cached as its ``result.json``), whatever its
    recipe is now: a row whose config or overrides changed since it ran is kept, marked ``"stale": true``."""
    rows, markets = [], []
    for seed in seeds:
        folder = WORK / "markets" / str(seed)
        if not (folder / "pairs" / "manifest.json").is_file():
            continue
        markets.append(market_row(folder, seed))
        for cached in sorted((WORK / "fits").glob(f"*/{seed}/result.json")):
            row = json.loads(cached.read_text())
            recipe = RECIPES.get(row["recipe"])
            rows.append({**row, "stale": recipe is None or _digest(*recipe) != row["digest"]})
    path = RESULTS / "recipe_tune.json"
    write_json_atomic({"fits": rows, "markets": markets, "machine": _machine()}, path)
    return path


def _machine() -> dict:
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    tune = sub.add_parser("tune", help="fit recipes on the tune markets")
    tune.add_argument("--recipe", action="append", choices=sorted(RECIPES), required=True)
    tune.add_argument("--seeds", type=int, nargs="+", default=list(TUNE_SEEDS))
    report = sub.add_parser("report", help="the chosen recipe on the report markets, once")
    report.add_argument("--recipe", choices=sorted(RECIPES), default="default")
    report.add_argument("--again", action="store_true", help="rerun (reproduce) an existing report")
    report.add_argument("--set", type=int, default=1, dest="report_set", help="the report set (fresh seeds)")
    sub.add_parser("probe", help="the linear probe alone and the keep-the-probe rule, on every fitted market")
    size = sub.add_parser("size", help="the default on one market design at several sizes")
    size.add_argument("--recipe", choices=sorted(RECIPES), default="default")
    size.add_argument("--articles", type=int, nargs="+", default=list(SIZE_ARTICLES))
    size.add_argument("--seed", type=int, default=SIZE_SEEDS[0])
    prepare = sub.add_parser("prepare", help="write markets and baseline predictions only (no scores)")
    prepare.add_argument("--seeds", type=int, nargs="+", required=True)
    collect = sub.add_parser("collect", help="recipe_tune.json from every cached tune fit")
    collect.add_argument("--seeds", type=int, nargs="+", default=list(TUNE_SEEDS))
    sub.add_parser("table", help="print the evidence tables")
    sub.add_parser("summary", help="one line per report and size market, and the targets")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: best on a crowded machine)")
    args = parser.parse_args(argv)
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    if args.cmd == "tune":
        print(cmd_tune(args.recipe, args.seeds))
    elif args.cmd == "collect":
        print(cmd_collect(args.seeds))
    elif args.cmd == "prepare":
        cmd_prepare(args.seeds)
    elif args.cmd == "probe":
        print(cmd_probe())
    elif args.cmd == "size":
        print(cmd_size(args.recipe, args.articles, args.seed))
    elif args.cmd == "report":
        print(cmd_report(args.recipe, args.again, args.report_set))
    elif args.cmd == "summary":
        for name in (*(report_path(k).name for k in REPORT_SETS), "recipe_size.json"):
            if (RESULTS / name).is_file():
                print(f"{name}:\n" + summary(RESULTS / name), end="\n\n")
        if (RESULTS / "recipe_probe.json").is_file():
            print(probe_table(RESULTS / "recipe_probe.json"))
    else:
        print(table(RESULTS / "recipe_tune.json"))
        for name in (*(report_path(k).name for k in REPORT_SETS), "recipe_size.json"):
            if (RESULTS / name).is_file():
                print(table(RESULTS / name))


if __name__ == "__main__":
    main()
