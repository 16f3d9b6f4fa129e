"""The pairs manifest: inputs and their hashes, the resolved config, counts that add up, the labels, a summary.

``manifest.json`` of a pairs folder (written last by :func:`data_pipelines.pairs_folder.write_pairs_folder`)::

    created_at, seconds
    inputs      news (file path and sha256, or a frame hash; ``embedded`` name), prices (source, frame hash)
    config      dataclasses.asdict of the resolved PairsConfig (embargo filled in)
    counts      input_rows, articles, exploded_rows, kept, quarantined{,_articles,_pairs} per reason, adds_up,
                labels_missing: per label column of the kept pairs, how many miss it and why,
                benchmark_pairs: pairs whose ticker is the benchmark (their exret and abret are 0)
    prices      prices.parquet: file, calendar, latency_seconds, benchmark, tickers, rows, first/last date
    labels      the label columns of the pairs, as Label dicts (kind, horizon, column)
    default_label  the Label a fit trains on unless told otherwise
    summary     sessions, tickers, share after the close, entry kinds, pairs per split (and fold)
    libraries   versions of Python and the libraries the pairs depend on
    outputs     sha256 of every file of the folder (added when the folder is written)
"""

from __future__ import annotations

import dataclasses
import platform
from importlib import metadata
from typing import Any

import pandas as pd

from data_pipelines.config import PairsConfig
from data_pipelines.contracts import LABEL_KINDS, NEWS_STAGE, PAIRS_STAGE, Label
from data_pipelines.errors import ConfigError
from data_pipelines.io import hash_file, hash_frame

LIBRARIES = ("pandas", "numpy", "pyarrow", "exchange_calendars", "jsonargparse", "statsmodels", "newsalpha")


def make_manifest(
    counts: dict, pairs: pd.DataFrame, quarantine: pd.DataFrame, cfg: PairsConfig, news: Any, prices_info: dict
) -> dict:
    """Inputs, the resolved config, counts per stage and reason (checked to add up), labels, versions, a summary.

    Raises
    ------
    RuntimeError
        The counts do not add up (a bug, never a user mistake: such a manifest is never written).
    """
    full = dict(counts, **quarantine_counts(quarantine), kept=len(pairs))
    ok_articles = full["input_rows"] == full["articles"] + sum(full["quarantined_articles"].values())
    ok_pairs = full["exploded_rows"] == full["kept"] + sum(full["quarantined_pairs"].values())
    if not (ok_articles and ok_pairs):
        raise RuntimeError(f"pair counts do not add up: {full}")
    full["adds_up"] = True
    labels = labels_in(pairs)
    return {
        "created_at": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
        "inputs": {"news": news_info(news, cfg), "prices": prices_info},
        "config": dataclasses.asdict(cfg),
        "counts": full,
        "labels": [label.to_dict() for label in labels],
        "default_label": default_label(labels, pairs, cfg.labels.benchmark).to_dict(),
        "summary": summarise(pairs),
        "libraries": library_versions(),
    }


def quarantine_counts(quarantine: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Quarantined rows per reason: all, whole records (stage news) and (article, ticker) rows (stage pairs)."""

    def per_reason(rows: pd.DataFrame) -> dict[str, int]:
        return {str(k): int(v) for k, v in rows["reason"].value_counts().items()}

    return {
        "quarantined": per_reason(quarantine),
        "quarantined_articles": per_reason(quarantine[quarantine["stage"] == NEWS_STAGE]),
        "quarantined_pairs": per_reason(quarantine[quarantine["stage"] == PAIRS_STAGE]),
    }


def news_info(news: Any, cfg: PairsConfig) -> dict[str, Any]:
    """What the manifest says about the news input: a file and its hash, or a frame's hash."""
    if isinstance(news, pd.DataFrame):
        out = {"kind": "dataframe", "frame_sha256": hash_frame(news.reset_index(drop=True))}
    else:
        out = {"kind": "file", "path": str(news), "sha256": hash_file(news)}
    if cfg.news.embedded is not None:
        out["embedded"] = cfg.news.embedded
    return out


def labels_in(pairs: pd.DataFrame) -> list[Label]:
    """The label columns of a pairs table, as :class:`Label` s, by horizon then kind."""
    found = []
    for col in pairs.columns:
        try:
            found.append(Label.parse(col))
        except ConfigError:  # not a label column
            continue
    return sorted(found, key=lambda lab: (lab.horizon, LABEL_KINDS.index(lab.kind)))


def default_label(labels: list[Label], pairs: pd.DataFrame, benchmark: str | None) -> Label:
    """The label a fit trains on unless told otherwise: the excess return at the shortest horizon, or the raw one
    when there is no benchmark or every pair's ticker is the benchmark itself (its excess return is zero)."""
    h = min(lab.horizon for lab in labels)
    only_benchmark = benchmark is not None and len(pairs) and bool((pairs["ticker"] == benchmark).all())
    kind = "exret" if benchmark is not None and not only_benchmark else "ret"
    return Label(kind, h)


def summarise(pairs: pd.DataFrame) -> dict:
    """Sessions, tickers, share published after the close, entry kinds, and counts per split (and fold)."""
    out = {
        "pairs": len(pairs),
        "articles": int(pairs["article_id"].nunique()),
        "tickers": int(pairs["ticker"].nunique()),
        "sessions": int(pairs["session"].nunique()),
        "first_session": None if pairs.empty else str(pairs["session"].min().date()),
        "last_session": None if pairs.empty else str(pairs["session"].max().date()),
        "share_after_close": round(float(pairs["published_after_close"].mean()), 4) if len(pairs) else None,
        "entry_kind": {str(k): int(v) for k, v in pairs["entry_kind"].value_counts().items()},
        "splits": {str(k): int(v) for k, v in pairs["split"].value_counts().sort_index().items()},
    }
    if "fold" in pairs:
        out["folds"] = {str(k): int(v) for k, v in pairs["fold"].value_counts().sort_index().items()}
    return out


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries the pairs depend on."""
    out = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out
