"""``newsalpha demo``: every stage on the embedded data and model, with cached stages on a second run."""

from __future__ import annotations

from pathlib import Path
from typing import Literal


def demo(
    out: Path = Path("runs/demo"),
    quick: bool = False,
    study: list[Literal["synth", "tweets"]] | Literal["synth", "tweets"] | None = None,
) -> int:
    """Run the whole pipeline on the embedded synthetic market and real tweets x S&P 500.

    synth -> pairs -> fit -> export -> predict -> baselines -> evaluate, on the synthetic market (planted signal)
    and on the real tweets x S&P 500; prints a summary and the report paths.

    Parameters
    ----------
    out : Path
        Run folder.
    quick : bool
        Tiny sizes, same code path (what the tests run).
    study : str or list of str, optional
        Run only this study, or these (default both): synth, tweets.
    """
    from newsalpha.demo import run_demo

    studies = [study] if isinstance(study, str) else study
    run_demo(out, quick=quick, studies=studies or ("synth", "tweets"))
    return 0
