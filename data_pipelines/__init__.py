"""Stage 1 of newsalpha: news and prices in, leakage-free (article, forward return) pairs out.

Never imports torch. Public API: :func:`build_pairs` and :class:`PairsResult` (``data_pipelines.pairs``),
:class:`PairsConfig` (``data_pipelines.config``, the one home of every option and default), :func:`open_pairs`
(``data_pipelines.pairs_folder``: the one way to read a pairs folder, checked complete), the price sources
(``data_pipelines.prices.sources``) and the synthetic market (``data_pipelines.synthetic.market``).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["PairsConfig", "PairsFolder", "PairsResult", "build_pairs", "open_pairs"]

_HOMES = {
    "build_pairs": "data_pipelines.pairs",
    "PairsResult": "data_pipelines.pairs",
    "PairsConfig": "data_pipelines.config",
    "open_pairs": "data_pipelines.pairs_folder",
    "PairsFolder": "data_pipelines.pairs_folder",
}


def __getattr__(name: str) -> Any:  # lazy, so importing the errors or contracts stays cheap
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(name)
