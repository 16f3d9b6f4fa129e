"""One-command experiments: ``newsalpha run --config configs/experiments/NAME.yaml``.

An experiment names the data (a pairs config, a pairs folder or a synthetic market), one or more models (fit
configs and overrides), the baselines and the evaluation options, optionally walk-forward refits. Every stage
runs as a library call, a stage whose inputs and config are unchanged is reused, every model configuration
judged on the pairs counts as a trial for the deflated Sharpe, and one folder holds every run and the
experiment report.

- :mod:`~newsalpha.experiment.config`: the typed config (:class:`ExperimentConfig`, :func:`load_experiment`);
- :mod:`~newsalpha.experiment.stages`: the hash-keyed stage runner;
- :mod:`~newsalpha.experiment.study`: the stages of one study; :mod:`~newsalpha.experiment.steps` what each does;
- :mod:`~newsalpha.experiment.walk_forward`: fold pairs folders and the stitched out-of-sample series;
- :mod:`~newsalpha.experiment.trials`: the trials index; :mod:`~newsalpha.experiment.tracking`: the loggers;
- :mod:`~newsalpha.experiment.runner`: :func:`run_experiment`, which runs it all.
"""

from newsalpha.experiment.config import ExperimentConfig, Study, StudyConfig, load_experiment
from newsalpha.experiment.runner import ExperimentResult, run_experiment

__all__ = ["ExperimentConfig", "ExperimentResult", "Study", "StudyConfig", "load_experiment", "run_experiment"]
