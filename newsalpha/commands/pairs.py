"""``newsalpha pairs --config configs/pairs/NAME.yaml [--out DIR]``: build the (article, forward return) pairs.

The options are the sections of :class:`data_pipelines.config.PairsConfig` (``news``, ``prices``, ``labels``,
``splits``, ``out``), so a pairs config file is this command's ``--config`` and any key can be set on the command
line too (``--labels.horizons [1,5]``). Relative input paths in a config file are read from its folder.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from data_pipelines.config import PairsConfig

log = logging.getLogger(__name__)


def pairs(config_file: Path | None = None, **sections: Any) -> int:
    """Build leakage-free (article, forward return) pairs from news and prices and write their run folder.

    Read news and prices as the pairs config says, align each article to its first tradable print, label it
    with forward returns and write pairs.parquet, quarantine.parquet, prices.parquet and manifest.json to the
    run folder (out; default runs/pairs/<config name>). User mistakes raise NewsalphaError (one line, exit 2).
    """
    from data_pipelines.config import validated, with_base_dir
    from data_pipelines.pairs import build_pairs_from_config

    cfg = PairsConfig(**sections)
    cfg = validated(cfg, what=str(config_file) if config_file is not None else "pairs options")
    if config_file is not None:
        cfg = with_base_dir(cfg, config_file.parent)
    result, folder = build_pairs_from_config(cfg, config_file=config_file)
    print(format_summary(result.manifest, str(folder)))
    return 0


def format_summary(manifest: dict, folder: str) -> str:
    """A few lines: where the files went, counts, sessions, share after the close, splits, quarantine reasons."""
    c, s = manifest["counts"], manifest["summary"]
    share = "n/a" if s["share_after_close"] is None else f"{100 * s['share_after_close']:.1f}%"
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(c["quarantined"].items(), key=lambda kv: -kv[1])) or "none"
    splits = ", ".join(f"{k} {v}" for k, v in s["splits"].items())
    lines = [
        f"pairs written to {folder}",
        f"  input rows {c['input_rows']}, articles {c['articles']}, (article, ticker) rows {c['exploded_rows']}, "
        f"pairs kept {c['kept']}",
        f"  sessions {s['sessions']} ({s['first_session']} to {s['last_session']}), tickers {s['tickers']}, "
        f"published after the close {share}",
        f"  splits: {splits}",
        f"  quarantined {sum(c['quarantined'].values())}: {reasons}",
    ]
    missing = c.get("labels_missing") or {}
    if missing:
        shown = ", ".join(f"{k} {sum(v.values())} ({', '.join(v)})" for k, v in missing.items())
        lines.append(f"  labels missing in kept pairs: {shown}")
    if "default_label" in manifest:
        lines.append(f"  default label: {manifest['default_label']['column']}")
    return "\n".join(lines)
