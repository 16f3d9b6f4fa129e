"""``newsalpha evolve --config configs/evolve/NAME.yaml --out DIR``: run (or resume) the survival loop.

The options are the sections of :class:`newsalpha.survival.evolve_config.EvolveConfig` (``market``, ``windows``,
``population``, ...), so an evolve config file is this command's ``--config``; relative paths in it are read from
its folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from newsalpha.survival.evolve_config import EvolveConfig


def evolve(out: Path, config_file: Path | None = None, **sections: Any) -> int:
    """Generations of agents that trade, die, are selected and specialised (resumable).

    A population of genome agents trades rolling windows of a market in separate processes; survivors breed,
    the champion predictor is fine-tuned on each window's telemetry and promoted only by a Diebold-Mariano test,
    and a lineage report shows what evolution did. Run again with the same --out to resume after a crash at the
    last completed generation.

    Parameters
    ----------
    out : Path
        Run folder (resumed when it holds one).
    """
    from newsalpha.survival.evolve import evolve as run_evolve
    from newsalpha.survival.evolve_config import evolve_config_from_dict

    cfg = EvolveConfig(**sections)
    where, base = (str(config_file), config_file.parent) if config_file is not None else ("evolve options", None)
    cfg = evolve_config_from_dict(cfg.to_dict(), file=where, base=base)
    res = run_evolve(cfg, out)
    summary = json.loads((res.report.parent / "summary.json").read_text(encoding="utf-8"))
    if res.resumed_from:
        print(f"resumed at generation {res.resumed_from}")
    print(f"evolve: {res.completed + 1} generation(s) in {res.out}")
    print(f"  {summary['verdict']}")
    print(f"  champion: {res.champion}")
    print(f"  lineage report: {res.report}")
    return 0
