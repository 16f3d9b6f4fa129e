"""``newsalpha run --config configs/experiments/NAME.yaml [--out DIR]``: a whole experiment in one command.

An experiment file is a format of its own (:mod:`newsalpha.experiment.config`: studies in other files, shorthand
model entries), so here ``--config`` is the experiment itself, read and checked by
:func:`~newsalpha.experiment.config.load_experiment`, and ``--print_config`` prints it as checked (paths absolute).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path


def run(config: Path, out: Path | None = None, print_config: bool = False) -> int:
    """Run an experiment: data, models, baselines, evaluation and the experiment report from one YAML.

    Run every stage an experiment config names (pairs or a synthetic market, each model's fit, export and
    predict, the baselines, the evaluation and report of each model, the experiment report), reusing every stage
    whose inputs and config are unchanged. Trials are counted per pairs hash.

    Parameters
    ----------
    config : Path
        An experiment config (configs/experiments/NAME.yaml).
    out : Path, optional
        Experiment folder (default runs/<name>).
    print_config : bool
        Print the checked experiment (each study with its paths made absolute) and exit.
    """
    import yaml

    from newsalpha.experiment import run_experiment
    from newsalpha.experiment.config import load_experiment

    if print_config:
        cfg, studies = load_experiment(config)
        shown = {"name": cfg.name or config.stem, "trials_index": cfg.trials_index}
        shown["studies"] = {s.name: dataclasses.asdict(s.config) for s in studies}
        print(yaml.safe_dump(shown, sort_keys=False), end="")
        return 0
    run_experiment(config, out)
    return 0
