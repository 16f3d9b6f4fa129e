"""The stage runner and the trials index: reuse when nothing changed, rerun exactly what a change reaches."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from data_pipelines.errors import ConfigError, NewsalphaError
from newsalpha.experiment.stages import Stage, StageRunner
from newsalpha.experiment.trials import count_trials, register_trials, trial_key


def _pipeline(tmp_path: Path, calls: list[str], a_config: dict, b_config: dict) -> list[Stage]:
    def writer(name: str):
        def call():
            calls.append(name)
            (tmp_path / f"{name}.txt").write_text(name)

        return call

    src = tmp_path / "input.csv"
    return [
        Stage("data", "data", writer("data"), [tmp_path / "data.txt"], config={"v": 1}, files=[src]),
        Stage("a", "model a", writer("a"), [tmp_path / "a.txt"], config=a_config, upstream=["data"]),
        Stage("b", "model b", writer("b"), [tmp_path / "b.txt"], config=b_config, upstream=["data"]),
        Stage("report", "report", writer("report"), [tmp_path / "report.txt"], upstream=["a", "b"]),
    ]


def _run(tmp_path: Path, stages: list[Stage], lines: list[str]) -> StageRunner:
    runner = StageRunner(tmp_path / "exp", total=len(stages), echo=lines.append)
    for stage in stages:
        runner.run(stage)
    return runner


def test_a_rerun_reuses_every_stage_and_a_change_reruns_only_what_it_reaches(tmp_path):
    (tmp_path / "input.csv").write_text("x")
    calls, lines = [], []
    _run(tmp_path, _pipeline(tmp_path, calls, {"lr": 1}, {"lr": 2}), lines)
    assert calls == ["data", "a", "b", "report"]
    assert lines[0].startswith("stage 1 of 4 [0 s] data: data") and "done in" in lines[1]

    calls.clear()
    lines.clear()
    runner = _run(tmp_path, _pipeline(tmp_path, calls, {"lr": 1}, {"lr": 2}), lines)
    assert calls == [] and runner.cached == ["data", "a", "b", "report"]
    assert all("skipped (inputs and config unchanged)" in line for line in lines)

    calls.clear()
    _run(tmp_path, _pipeline(tmp_path, calls, {"lr": 1}, {"lr": 3}), [])  # model b changed
    assert calls == ["b", "report"]

    calls.clear()
    (tmp_path / "input.csv").write_text("y")  # the input file changed: everything downstream reruns
    _run(tmp_path, _pipeline(tmp_path, calls, {"lr": 1}, {"lr": 3}), [])
    assert calls == ["data", "a", "b", "report"]


def test_a_missing_output_or_a_failed_stage_is_never_taken_as_done(tmp_path):
    (tmp_path / "input.csv").write_text("x")
    calls = []
    _run(tmp_path, _pipeline(tmp_path, calls, {}, {}), [])
    (tmp_path / "a.txt").unlink()
    calls.clear()
    _run(tmp_path, _pipeline(tmp_path, calls, {}, {}), [])
    assert calls == ["a"]  # only the stage whose output is gone; its key, and so the report's, is unchanged

    def boom():
        raise ConfigError("bad")

    runner = StageRunner(tmp_path / "exp2", echo=lambda s: None)
    with pytest.raises(ConfigError):
        runner.run(Stage("x", "x", boom, [tmp_path / "x.txt"]))
    assert not runner.record(Stage("x", "x", boom, [])).exists()
    with pytest.raises(NewsalphaError, match="did not write"):
        runner.run(Stage("y", "y", lambda: None, [tmp_path / "never.txt"]))


def test_a_stage_before_its_upstream_is_a_bug(tmp_path):
    runner = StageRunner(tmp_path, echo=lambda s: None)
    with pytest.raises(RuntimeError, match="upstream"):
        runner.run(Stage("b", "b", lambda: None, [], upstream=["a"]))


def test_trials_add_up_per_pairs_hash_and_reruns_add_nothing(tmp_path):
    index = tmp_path / "trials.json"
    first = {trial_key({"lr": 1}): {"model": "a"}, trial_key({"lr": 2}): {"model": "b"}}
    assert register_trials(index, "pairs1", first) == 2
    assert register_trials(index, "pairs1", first) == 2  # the same experiment again
    assert register_trials(index, "pairs1", {trial_key({"lr": 3}): {"model": "c"}}) == 3  # a later experiment
    assert register_trials(index, "pairs2", first) == 2  # other pairs count on their own
    assert count_trials(index, "pairs1") == 3 and count_trials(index, "none") == 0
    stored = json.loads(index.read_text())["pairs"]["pairs1"]["trials"]
    assert stored[trial_key({"lr": 1})]["model"] == "a" and "first_seen" in stored[trial_key({"lr": 1})]
    assert trial_key({"a": 1, "b": 2}) == trial_key({"b": 2, "a": 1})


def _register_many(args: tuple[str, int]) -> None:
    index, worker = args
    for i in range(10):
        register_trials(index, "p", {trial_key({"w": worker, "i": i}): {"w": worker}})


def test_concurrent_experiments_lose_no_trial(tmp_path):
    index = str(tmp_path / "trials.json")
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pool.map(_register_many, [(index, 0), (index, 1)])
    assert count_trials(index, "p") == 20


def test_a_corrupt_index_is_a_named_error(tmp_path):
    index = tmp_path / "trials.json"
    index.write_text("{not json")
    with pytest.raises(ConfigError, match="trials index is not valid JSON"):
        register_trials(index, "p", {"k": {}})
