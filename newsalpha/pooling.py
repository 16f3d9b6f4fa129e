"""Pooling: how a backbone's token states become one vector per text (training and inference alike).

``torch`` is imported inside :func:`pool`, so importing this module stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from data_pipelines.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import torch

PoolingMode = Literal["mean", "first", "last"]
POOLING_MODES: tuple[str, ...] = ("mean", "first", "last")


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, mode: str = "mean") -> torch.Tensor:
    """Reduce token states ``[B, T, H]`` to one vector per text ``[B, H]``.

    Parameters
    ----------
    hidden : torch.Tensor
        Last hidden states, shape ``[B, T, H]``.
    attention_mask : torch.Tensor
        1 for real tokens, 0 for padding, shape ``[B, T]``; padding may be on either side.
    mode : {"mean", "first", "last"}
        ``mean``: average of the real tokens (aggregated pooling, Guo & Hauptmann 2024). ``first``: the
        first real token (BERT's [CLS]). ``last``: the last real token (decoders, which only see the past).

    Returns
    -------
    torch.Tensor
        Shape ``[B, H]``, dtype of ``hidden``.
    """
    import torch

    if mode not in POOLING_MODES:
        raise ConfigError(f"pooling must be one of {', '.join(POOLING_MODES)}, got '{mode}'")
    mask = attention_mask.to(hidden.device)
    if mode == "mean":
        weights = mask.to(hidden.dtype).unsqueeze(-1)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
    positions = torch.arange(mask.shape[1], device=hidden.device).expand_as(mask)
    if mode == "first":
        # argmax returns the first maximal index: the first real token whichever side is padded.
        index = (mask > 0).to(torch.int64).argmax(dim=1)
    else:
        index = torch.where(mask > 0, positions, torch.zeros_like(positions)).argmax(dim=1)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), index]
