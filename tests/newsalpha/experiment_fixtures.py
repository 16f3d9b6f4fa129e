"""Small inputs for the experiment tests: a pairs folder on real XNYS sessions, and a tiny experiment config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from data_pipelines.calendar import session_prints
from data_pipelines.contracts import PRICES_FILE, QUARANTINE_FILE, Label, empty_quarantine
from data_pipelines.pairs_folder import write_pairs_tables

TICKERS = ("AAA", "BBB", "CCC")


def calendar_pairs(n_sessions: int = 80, horizons: tuple[int, ...] = (1, 5), seed: int = 0) -> pd.DataFrame:
    """One pair per ticker and session from 2023-01-03: entry at the open, exits at the close ``h`` sessions on."""
    prints = session_prints("XNYS", "2023-01-03", "2023-12-29")
    sessions = prints.index[:n_sessions]
    rng = np.random.default_rng(seed)
    rows = []
    for i, session in enumerate(sessions):
        for ticker in TICKERS:
            row = {
                "article_id": f"{ticker}-{i}",
                "ticker": ticker,
                "published_at": prints["open_at"].iloc[i] - pd.Timedelta(hours=2),
                "published_after_close": False,
                "text": f"{ticker} news {i}",
                "session": session,
                "entry_at": prints["open_at"].iloc[i],
                "entry_kind": "open",
                "split": "train",
            }
            for h in horizons:
                ret = float(rng.normal(0, 0.01))
                row.update({f"ret_h{h}": ret, f"exret_h{h}": ret, f"abret_h{h}": ret})
                row[f"exit_at_h{h}"] = prints["close_at"].iloc[i + h] if i + h < len(prints) else pd.NaT
            rows.append(row)
    return pd.DataFrame(rows)


def pairs_folder(folder: Path, pairs: pd.DataFrame, embargo: int = 5) -> Path:
    """Write ``pairs`` as a complete pairs folder (manifest with labels, calendar and the splits' embargo)."""
    horizons = sorted({int(c.split("_h")[1]) for c in pairs.columns if c.startswith("ret_h")})
    labels = [Label(k, h).to_dict() for h in horizons for k in ("ret", "exret", "abret")]
    prices = pd.DataFrame({"date": pd.to_datetime(["2023-01-03"]), "ticker": ["AAA"], "open": [1.0], "close": [1.0]})
    manifest = {
        "config": {"splits": {"embargo": embargo}},
        "labels": labels,
        "default_label": Label("exret", horizons[0]).to_dict(),
        "prices": {"file": PRICES_FILE, "calendar": "XNYS", "latency_seconds": 0},
        "summary": {},
    }
    write_pairs_tables(folder, pairs, {QUARANTINE_FILE: empty_quarantine(), PRICES_FILE: prices}, manifest)
    return folder
