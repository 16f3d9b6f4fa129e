"""``newsalpha generation``: fine-tune the next generation from agent telemetry and promote it only if better."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def generation(
    parent: Path,
    telemetry: Path,
    pairs: dict[str, Any],
    fit: dict[str, Any],
    target: str = "exret_h1",
    level: float = 0.05,
    registry: Path | None = None,
    out: Path | None = None,
    overwrite: bool = False,
    config_file: Path | None = None,
) -> int:
    """Telemetry -> pairs -> child fine-tuned from the parent -> Diebold-Mariano test -> promote or not.

    Build pairs from what agents saw, fine-tune a child from the parent predictor, compare both on the same
    held-out window and promote the child only when a one-sided Diebold-Mariano test says it is better.
    pairs, fit, target, level and registry usually come from --config configs/generation/NAME.yaml.

    Parameters
    ----------
    parent : Path
        Parent predictor folder (newsalpha export).
    telemetry : Path
        Telemetry store (SQLite file).
    pairs : dict
        Pairs config for the agents' news (prices, labels, splits; no news section).
    fit : dict
        Fit config of the child (model, data, trainer; backbone and data folder are filled in).
    target : str
        Label column the child is trained and compared on.
    level : float
        Significance level of the one-sided promotion test.
    registry : Path, optional
        Lineage registry (default lineage.json beside the telemetry).
    out : Path, optional
        Run folder (default runs/generation/<timestamp>).
    overwrite : bool
        Replace an earlier child run in --out.
    """
    from datetime import UTC, datetime

    from newsalpha.survival.generation import generation_spec, run_generation

    spec = {"pairs": pairs, "fit": fit, "target": target, "level": level}
    if registry is not None:
        spec["registry"] = str(registry)
    base = config_file.parent if config_file is not None else Path.cwd()
    out = out or Path("runs/generation") / datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    res = run_generation(parent, telemetry, generation_spec(spec, base=base), out, overwrite=overwrite)
    d = res.decision
    verdict = "PROMOTED" if d.promoted else "not promoted (parent stays champion)"
    print(f"generation {res.generation}: child {verdict}")
    print(
        f"  test pairs {d.n_test} over {d.n_sessions} sessions; MSE parent {d.mse_parent:.6g}, child {d.mse_child:.6g}"
    )
    print(f"  Diebold-Mariano {d.dm_stat:.2f} (one-sided p {d.dm_pvalue:.3f}, level {d.level})")
    print(f"  child predictor: {res.child}")
    return 0
