"""``newsalpha demo``: the demo experiment (``configs/experiments/demo.yaml``), as ``newsalpha run`` runs it."""

from __future__ import annotations

from pathlib import Path
from typing import Literal


def demo(
    out: Path = Path("runs/demo"),
    quick: bool = False,
    study: list[Literal["synth", "tweets"]] | Literal["synth", "tweets"] | None = None,
) -> int:
    """Run the demo experiment on the embedded synthetic market and real tweets x S&P 500.

    The same as newsalpha run --config configs/experiments/demo.yaml: synth -> pairs -> baselines -> fit ->
    export -> predict -> evaluate -> experiment report for each study, stages reused when unchanged; prints the
    summary and the report paths.

    Parameters
    ----------
    out : Path
        Experiment folder.
    quick : bool
        Tiny sizes, same code path (what the tests run).
    study : str or list of str, optional
        Run only this study, or these (default both): synth, tweets.
    """
    from newsalpha.demo import run_demo

    studies = [study] if isinstance(study, str) else study
    run_demo(out, quick=quick, studies=studies or ("synth", "tweets"))
    return 0
