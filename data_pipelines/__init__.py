"""Stage 1 of newsalpha: news and prices in, leakage-free (article, forward return) pairs out.

Never imports torch. Public API: :func:`build_pairs` and :class:`PairsResult` (``data_pipelines.pairs``),
the price sources (``data_pipelines.prices.sources``) and the synthetic market (``data_pipelines.synthetic.market``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_pairs", "PairsResult"]


def __getattr__(name: str) -> Any:  # lazy, so importing the errors or contracts stays cheap
    if name in ("build_pairs", "PairsResult"):
        from data_pipelines import pairs

        return getattr(pairs, name)
    raise AttributeError(name)
