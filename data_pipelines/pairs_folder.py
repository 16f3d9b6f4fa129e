"""A pairs run folder: written so that it is complete or visibly not, and opened only when complete.

``newsalpha pairs`` writes into one folder::

    pairs.parquet        the pairs contract (data_pipelines.contracts)
    quarantine.parquet   every row set aside, with its reason
    prices.parquet       the adjusted price panel the labels were computed from (the pairs' tickers + benchmark)
    manifest.json        written last: inputs, config, counts, labels, prices (calendar, latency), and the sha256
                         of each file above

A folder is complete only when its manifest exists and the hash of every file it lists matches. Every reader
(fit, predict, baselines, evaluation) opens a folder with :func:`open_pairs`, which checks exactly that; so a run
killed while overwriting an earlier one (new pairs, old quarantine, no manifest) is refused, never half-read.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from data_pipelines.contracts import MANIFEST_FILE, PAIRS_FILE, PRICES_FILE, QUARANTINE_FILE
from data_pipelines.io import hash_file, remove_stale_temps, write_json_atomic, write_parquet_atomic

log = logging.getLogger(__name__)

#: The tables of a pairs folder, each hashed in the manifest's ``outputs``.
FOLDER_FILES = (PAIRS_FILE, QUARANTINE_FILE, PRICES_FILE)


def write_pairs_folder(result: Any, folder: str | os.PathLike, *, config_file: str | os.PathLike | None = None) -> Path:
    """Write a :class:`~data_pipelines.pairs.PairsResult` into ``folder``, the manifest last, each file atomically.

    Temporary files a killed earlier run left behind are removed first, and an old manifest is removed before any
    table is replaced, so the folder never shows an old manifest beside new tables. The manifest gets the sha256 of
    every file (``outputs``) and of the config file.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    removed = remove_stale_temps(folder)
    if removed:
        log.warning("removed %d temporary file(s) left in %s by an interrupted run", len(removed), folder)
    (folder / MANIFEST_FILE).unlink(missing_ok=True)
    write_parquet_atomic(result.pairs, folder / PAIRS_FILE)
    write_parquet_atomic(result.quarantine, folder / QUARANTINE_FILE)
    write_parquet_atomic(result.prices, folder / PRICES_FILE)
    manifest = dict(result.manifest)
    if config_file is not None:
        manifest["config_file"] = {"path": str(config_file), "sha256": hash_file(config_file)}
    manifest["outputs"] = {name: hash_file(folder / name) for name in FOLDER_FILES}
    write_json_atomic(manifest, folder / MANIFEST_FILE)
    result.manifest = manifest
    log.info("wrote %s", folder)
    return folder
