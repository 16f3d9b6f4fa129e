"""``newsalpha synth --config configs/synth/NAME.yaml --out DIR``: write a synthetic market with a planted signal.

The options are the keyword arguments of :func:`data_pipelines.synthetic.market.make_market` (``--seed 3``,
``--n_tickers 8``) plus ``news_format`` and ``pairs``, so a synth config file is this command's ``--config``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def synth(
    out: Path,
    news_format: str = "parquet",
    pairs: dict[str, Any] | None = None,
    config_file: Path | None = None,
    **market: Any,
) -> int:
    """Generate a synthetic news market with a known, planted signal.

    Generate ticker-tagged news, factor-model prices on real exchange sessions and the truth (each article's
    planted effect), and write them with a ready pairs config: newsalpha pairs --config DIR/pairs.yaml then
    builds the pairs.

    Parameters
    ----------
    out : Path
        Folder for news, prices, truth and pairs.yaml.
    news_format : str
        The news file's format: parquet, csv or jsonl.
    pairs : dict, optional
        A mapping merged into the generated pairs.yaml (e.g. splits: {fractions: [...]}).
    """
    from data_pipelines.synthetic.io import synth_config_from_dict, write_market
    from data_pipelines.synthetic.market import make_market

    where = str(config_file or "synth options")
    _, output = synth_config_from_dict({"news_format": news_format, "pairs": pairs or {}}, file=where)
    t0 = time.perf_counter()
    market = make_market(**market)
    paths = write_market(market, out, output["news_format"], output["pairs"])
    info = market.info
    kinds = ", ".join(f"{k} {v}" for k, v in info["kinds"].items())
    print(f"synthetic market written to {out} in {time.perf_counter() - t0:.1f}s")
    print(
        f"  {info['articles']} articles, {len(info['tickers'])} tickers + {info['params']['benchmark']}, "
        f"{info['sessions']} sessions ({info['first_session']} to {info['last_session']})"
    )
    print(
        f"  target oracle IC {info['params']['signal']} on {info['params']['calibrate_to']}_h"
        f"{info['params']['horizon']}, effect scale {info['scale']:.4g} (max reachable IC "
        f"{info['max_reachable_ic']:.2f})"
    )
    print(f"  kinds: {kinds}")
    print(f"  next: newsalpha pairs --config {paths['pairs_config']}")
    return 0
