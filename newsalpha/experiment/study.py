"""One study's stages: data -> baselines -> every model (or every fold of every model) -> trials -> evaluation
-> the experiment report.

Folder of a study (``<out>`` for a one-study experiment, ``<out>/<study>`` otherwise)::

    market/                    the synthetic market (data.synth only)
    pairs/                     the pairs folder (unless data.pairs_dir names one)
    walk_forward/              fold pairs folders, the evaluation pairs, folds.json (walk_forward only)
    baselines/                 baseline predictions on the test rows (stitched over the folds in walk-forward)
    models/<name>/             each model's run folder: fit, predictor, predictions, metrics, report
    models/<name>/folds/fold_k walk-forward: one fit run per fold; the stitched predictions one level up
    report/                    experiment.html / .md / .json: every model and baseline side by side

With several labels (``evaluation.horizons``) the baselines, models and report folders get ``-<label>``.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from data_pipelines import open_pairs
from data_pipelines.contracts import PAIRS_FILE, Label, RunLayout
from data_pipelines.errors import ConfigError
from newsalpha.experiment import steps
from newsalpha.experiment.config import Study
from newsalpha.experiment.stages import Stage, StageRunner
from newsalpha.experiment.tracking import trainer_loggers
from newsalpha.experiment.trials import register_trials, trial_key
from newsalpha.experiment.walk_forward import boundaries, fold_dir, read_folds, write_folds

RESERVED = {"market", "pairs", "walk_forward", "baselines", "models", "report"}


class StudyRun:
    """Builds and runs the stages of one study into ``root``."""

    def __init__(
        self,
        study: Study,
        root: Path,
        *,
        experiment: str,
        experiment_root: Path,
        where: str,
        echo: Callable[[str], None] = print,
    ) -> None:
        self.study, self.cfg, self.root, self.echo = study, study.config, root, echo
        self.experiment, self.experiment_root, self.where = experiment, experiment_root, where
        self.id = study.name
        self.pairs_dir = Path(self.cfg.data.pairs_dir) if self.cfg.data.pairs_dir else root / "pairs"
        self.labels: list[Label] = []
        self.pairs_sha = ""
        self.n_trials: dict[str, int] = {}
        self.new_trials: dict[str, int] = {}
        self.runs: dict[str, dict[str, Path]] = {}
        self.pairs_cfg = None
        self.synth = None
        if self.cfg.data.synth is not None:
            self.synth = steps.synth_spec(self.cfg.data.synth, f"{where}: data.synth")
        elif self.cfg.data.pairs is not None:
            self.pairs_cfg = steps.pairs_spec(self.cfg.data.pairs, study.base_dir, f"{where}: data.pairs")
        bad = sorted(set(self.cfg.models) & RESERVED)
        if bad:
            raise ConfigError(f"{where}: model name '{bad[0]}' is reserved (not one of {', '.join(sorted(RESERVED))})")

    # -- sizes ------------------------------------------------------------------------------------------------

    def n_labels(self) -> int:
        return len(self.cfg.evaluation.horizons or [None])

    def n_folds(self) -> int:
        wf = self.cfg.walk_forward
        return 0 if wf is None else int(wf.folds or 1)  # refit_every: known once the pairs exist

    def n_baseline_stages(self) -> int:
        b = self.cfg.baselines
        return 1 + bool(b.embeddings) + bool(b.zeroshot)

    def count_stages(self) -> int:
        """How many stages the study runs (exact unless walk_forward.refit_every, then 1 fold is assumed)."""
        folds = self.n_folds()
        per_label = self.n_baseline_stages() + len(self.cfg.models) * (3 * max(folds, 1) + 1) + 1
        return len(self.data_stages()) + (1 if folds else 0) + self.n_labels() * per_label

    # -- data -------------------------------------------------------------------------------------------------

    def data_stages(self) -> list[Stage]:
        """Synth (if asked) and pairs (unless a pairs folder is given)."""
        out: list[Stage] = []
        echo = self._echo
        if self.synth is not None:
            market = self.root / "market"
            out.append(
                Stage(
                    f"{self.id}/synth",
                    "synthetic market",
                    lambda: steps.write_synth(self.synth, market, echo),
                    [market / "pairs.yaml"],
                    config=self.synth,
                )
            )
            cfg_file = market / "pairs.yaml"
            out.append(
                Stage(
                    f"{self.id}/pairs",
                    f"pairs from {cfg_file}",
                    lambda: steps.build_pairs(cfg_file, self.pairs_dir, echo),
                    [self.pairs_dir / "manifest.json"],
                    config=str(self.pairs_dir),
                    upstream=[f"{self.id}/synth"],
                )
            )
        elif self.pairs_cfg is not None:
            cfg = self.pairs_cfg
            out.append(
                Stage(
                    f"{self.id}/pairs",
                    "pairs",
                    lambda: steps.build_pairs(cfg, self.pairs_dir, echo),
                    [self.pairs_dir / "manifest.json"],
                    config={"config": cfg.to_dict(), "out": str(self.pairs_dir)},
                    files=steps.pairs_input_files(cfg),
                )
            )
        return out

    def open_data(self, runner: StageRunner) -> None:
        """After the data stages: the pairs' hash (the key of everything downstream) and the labels to judge."""
        folder = open_pairs(self.pairs_dir)
        self.pairs_sha = folder.manifest["outputs"][PAIRS_FILE]
        runner.keys.setdefault(f"{self.id}/pairs", self.pairs_sha)
        if self.cfg.data.label:
            base = Label.parse(self.cfg.data.label)
        elif folder.default_label is not None:
            base = folder.default_label
        else:
            raise ConfigError(
                f"{self.where}: the pairs manifest names no default_label; set data.label (e.g. exret_h1)"
            )
        horizons = self.cfg.evaluation.horizons or [base.horizon]
        self.labels = [Label(base.kind, int(h)) for h in horizons]
        have = {lab.column for lab in folder.labels}
        missing = [lab.column for lab in self.labels if lab.column not in have]
        if missing:
            raise ConfigError(
                f"{self.where}: the pairs have no label {missing[0]} (they have: {', '.join(sorted(have))})"
            )

    # -- everything after the data ----------------------------------------------------------------------------

    def suffix(self, label: Label) -> str:
        return "" if len(self.labels) == 1 else f"-{label.column}"

    def wf_root(self) -> Path:
        return self.root / "walk_forward"

    def folds(self) -> list[int]:
        return [f.k for f in read_folds(self.wf_root())] if self.cfg.walk_forward else []

    def walk_forward_stage(self) -> Stage:
        wf = self.cfg.walk_forward
        return Stage(
            f"{self.id}/walk_forward",
            "fold pairs folders",
            lambda: write_folds(self.pairs_dir, self.wf_root(), wf),
            [self.wf_root() / "folds.json"],
            config=dataclasses.asdict(wf),
            upstream=[f"{self.id}/pairs"],
        )

    def baseline_stages(self, label: Label) -> list[Stage]:
        b, sfx = self.cfg.baselines, self.suffix(label)
        out_dir = self.root / f"baselines{sfx}"
        kinds: list[tuple[str, Callable[[Path, Path], Any], Any]] = [
            ("baselines", lambda p, o: steps.run_text_baselines(p, label, o, b.tfidf), steps.baseline_names(b.tfidf))
        ]
        if b.embeddings:
            kinds.append(("embeddings", lambda p, o: steps.run_embeddings(p, label, o, b.embeddings), b.embeddings))
        if b.zeroshot:
            kinds.append(("zeroshot", lambda p, o: steps.run_zeroshot(p, label, o, b.zeroshot), b.zeroshot))
        stages = []
        for name, call, cfg in kinds:
            outputs = [out_dir / f"{n}.parquet" for n in self._baseline_files(name, cfg)]
            stages.append(
                Stage(
                    f"{self.id}/{name}{sfx}",
                    f"{name} on {label.column}",
                    self._baseline_call(call, out_dir, label, name),
                    outputs,
                    config={"label": label.column, "what": cfg},
                    upstream=self._data_upstream(),
                )
            )
        return stages

    @staticmethod
    def _baseline_files(kind: str, cfg: Any) -> tuple[str, ...]:
        return {"baselines": cfg, "embeddings": ("embedding_ridge",), "zeroshot": ("zero_shot",)}[kind]

    def baseline_files(self) -> list[str]:
        """The baseline predictions this study's config asks for (their file stems)."""
        b = self.cfg.baselines
        names = [*steps.baseline_names(b.tfidf)]
        return names + ["embedding_ridge"] * bool(b.embeddings) + ["zero_shot"] * bool(b.zeroshot)

    def _baseline_call(self, call: Callable, out_dir: Path, label: Label, kind: str) -> Callable[[], Any]:
        if not self.cfg.walk_forward:
            return lambda: call(self.pairs_dir, out_dir)

        def per_fold() -> Any:
            parts = []
            for k in self.folds():
                part = fold_dir(self.wf_root(), k) / f"{kind}-{label.column}"
                if part.is_dir():
                    shutil.rmtree(part)
                call(fold_dir(self.wf_root(), k) / "pairs", part)
                parts.append((k, part))
            return steps.stitch_baselines(parts, out_dir, label)

        return per_fold

    def _data_upstream(self) -> list[str]:
        return [f"{self.id}/walk_forward" if self.cfg.walk_forward else f"{self.id}/pairs"]

    def model_stages(self, name: str, label: Label) -> list[Stage]:
        """fit -> export -> predict for one model (once per fold in walk-forward)."""
        model, run = self.cfg.models[name], self.root / "models" / f"{name}{self.suffix(label)}"
        self.runs.setdefault(label.column, {})[name] = run
        spec = {"fit": steps.fit_content(model), "label": label.column, "logger": dataclasses.asdict(model.logger)}
        folds = self.folds()
        targets = [(f"{self.id}/{name}{self.suffix(label)}", run, self.pairs_dir, name)]
        if folds:
            targets = [
                (
                    f"{self.id}/{name}{self.suffix(label)}/fold_{k}",
                    run / "folds" / f"fold_{k}",
                    fold_dir(self.wf_root(), k) / "pairs",
                    f"{name}/fold_{k}",
                )
                for k in folds
            ]
        stages = []
        for sid, rdir, pairs, run_name in targets:
            loggers = trainer_loggers(
                model.logger, rdir, run_name=run_name, experiment=self.experiment, experiment_root=self.experiment_root
            )
            stages += [
                Stage(
                    f"{sid}/fit",
                    f"fit {name} on {label.column} ({pairs.parent.name if folds else 'pairs'})",
                    lambda m=model, r=rdir, p=pairs, lg=loggers: steps.fit_model(m, r, p, label, lg),
                    [RunLayout(rdir).fit_record],
                    config=spec,
                    upstream=self._data_upstream(),
                ),
                Stage(
                    f"{sid}/export",
                    "export the selected checkpoint",
                    lambda r=rdir: steps.export_model(r),
                    [RunLayout(rdir).predictor / "newsalpha.json"],
                    upstream=[f"{sid}/fit"],
                ),
                Stage(
                    f"{sid}/predict",
                    "predict the test rows",
                    lambda r=rdir, p=pairs: steps.predict_model(r, p, self._echo),
                    [RunLayout(rdir).predictions],
                    upstream=[f"{sid}/export"],
                ),
            ]
        return stages

    def trial_specs(self, label: Label) -> dict[str, dict[str, Any]]:
        """Every model judged on this label: trial key -> what it was."""
        wf = dataclasses.asdict(self.cfg.walk_forward) if self.cfg.walk_forward else None
        out = {}
        for name, model in self.cfg.models.items():
            spec = {"fit": steps.fit_content(model), "label": label.column, "walk_forward": wf}
            out[trial_key(spec)] = {
                "experiment": self.experiment,
                "study": self.id,
                "model": name,
                "label": label.column,
            }
        return out

    def count_trials(self, label: Label, index: Path) -> int:
        before = len(self.trial_specs(label))
        n = register_trials(index, self.pairs_sha, self.trial_specs(label))
        self.n_trials[label.column], self.new_trials[label.column] = n, before
        return n

    def evaluate_stage(self, name: str, label: Label, upstream: list[str]) -> Stage:
        run, sfx = self.runs[label.column][name], self.suffix(label)
        model, folds = self.cfg.models[name], self.folds()
        pairs = self.wf_root() / "pairs" if folds else self.pairs_dir

        def config() -> dict[str, Any]:
            return {"evaluation": dataclasses.asdict(self.cfg.evaluation), "n_trials": self.n_trials[label.column]}

        def call() -> dict[str, Any]:
            if folds:
                self._stitch_model(run, label, folds)
            steps.copy_baselines(self.root / f"baselines{sfx}", run, self.baseline_files())
            names = {"run_name": name, "experiment": self.experiment, "experiment_root": self.experiment_root}
            return steps.evaluate_model(
                run,
                pairs,
                self.cfg.evaluation,
                self.n_trials[label.column],
                self._metrics_extra(name, label),
                (model.logger, names),
            )

        outputs = [RunLayout(run).metrics, RunLayout(run).report_html]
        return Stage(
            f"{self.id}/{name}{sfx}/evaluate",
            f"backtest and report {name}",
            call,
            outputs,
            config=config,
            upstream=upstream,
        )

    def _metrics_extra(self, name: str, label: Label) -> dict[str, Any]:
        study = self.id if len(self.cfg.models) == 1 else f"{self.id}: {name}"
        extra: dict[str, Any] = {"context": {"study": study, "model": name, "experiment": self.experiment}}
        if self.cfg.walk_forward:
            folds = read_folds(self.wf_root())
            extra["walk_forward"] = {
                **dataclasses.asdict(self.cfg.walk_forward),
                "boundaries": boundaries(folds),
                "folds": [dataclasses.asdict(f) for f in folds],
            }
        return extra

    def _stitch_model(self, run: Path, label: Label, folds: list[int]) -> None:
        from newsalpha.experiment.walk_forward import stitch

        parts = {k: RunLayout(run / "folds" / f"fold_{k}").predictions for k in folds}
        stitch(parts, RunLayout(run).predictions, label)
        first = RunLayout(run / "folds" / f"fold_{folds[0]}").config
        if first.is_file():  # the recipe, for the report (identical in every fold but for the paths)
            shutil.copy2(first, RunLayout(run).config)

    def report_stage(self, label: Label, upstream: list[str]) -> Stage:
        sfx, runs = self.suffix(label), self.runs[label.column]
        out_dir = self.root / f"report{sfx}"
        title = self.id if len(self.labels) == 1 else f"{self.id} ({label.column})"

        def call() -> dict[str, Path]:
            from evaluation.experiment_report import build_experiment_report

            return build_experiment_report(
                list(runs.values()), out_dir, title=title, names=list(runs), n_trials=self.n_trials[label.column]
            )

        return Stage(
            f"{self.id}/report{sfx}",
            "experiment report",
            call,
            [out_dir / "experiment.html"],
            config=lambda: {"n_trials": self.n_trials[label.column], "models": list(runs)},
            upstream=upstream,
        )

    def _echo(self, text: str) -> None:
        self.echo(text)
