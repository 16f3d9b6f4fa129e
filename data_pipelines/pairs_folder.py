"""A pairs run folder: written so that it is complete or visibly not, and opened only when complete.

``newsalpha pairs`` writes into one folder::

    pairs.parquet        the pairs contract (data_pipelines.contracts)
    quarantine.parquet   every row set aside, with its reason
    prices.parquet       the adjusted price panel the labels were computed from (the pairs' tickers + benchmark)
    manifest.json        written last: inputs, config, counts, labels, prices (calendar, latency), and the sha256
                         of each file above

A folder is complete only when its manifest exists and the hash of every file it lists matches. Every reader
(fit, predict, baselines, evaluation) opens a folder with :func:`open_pairs`, which checks exactly that; so a run
killed while overwriting an earlier one (new pairs, old quarantine, no manifest) is refused, never half-read::

    folder = open_pairs("runs/fnspid/pairs")      # or .../pairs.parquet
    pairs = folder.read_pairs()                   # folder.pairs is the path
    folder.default_label, folder.labels, folder.calendar, folder.latency
    prices = folder.read_prices()                 # the panel the labels were computed from
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from data_pipelines.contracts import MANIFEST_FILE, PAIRS_FILE, PRICES_FILE, QUARANTINE_FILE, Label
from data_pipelines.errors import DataContractError
from data_pipelines.io import hash_file, remove_stale_temps, write_json_atomic, write_parquet_atomic

log = logging.getLogger(__name__)


def write_pairs_folder(result: Any, folder: str | os.PathLike, *, config_file: str | os.PathLike | None = None) -> Path:
    """Write a :class:`~data_pipelines.pairs.PairsResult` into ``folder`` (see :func:`write_pairs_tables`).

    The manifest also gets the path and sha256 of the config file; ``result.manifest`` is updated to what was written.
    """
    manifest = dict(result.manifest)
    if config_file is not None:
        manifest["config_file"] = {"path": str(config_file), "sha256": hash_file(config_file)}
    tables = {QUARANTINE_FILE: result.quarantine, PRICES_FILE: result.prices}
    result.manifest = write_pairs_tables(folder, result.pairs, tables, manifest)
    return Path(folder)


def write_pairs_tables(
    folder: str | os.PathLike,
    pairs: pd.DataFrame,
    tables: dict[str, pd.DataFrame] | None = None,
    manifest: dict | None = None,
) -> dict:
    """Write ``pairs.parquet``, the other ``tables`` (file name -> frame) and then the manifest, each atomically.

    Temporary files a killed earlier run left behind are removed first, and an old manifest is removed before any
    table is replaced, so the folder never shows an old manifest beside new tables. The manifest written is
    ``manifest`` plus ``outputs``: the sha256 of every table. Test fixtures that need a pairs folder call this too.

    Returns
    -------
    dict
        The manifest written.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    removed = remove_stale_temps(folder)
    if removed:
        log.warning("removed %d temporary file(s) left in %s by an interrupted run", len(removed), folder)
    (folder / MANIFEST_FILE).unlink(missing_ok=True)
    files = {PAIRS_FILE: pairs, **(tables or {})}
    for name, frame in files.items():
        write_parquet_atomic(frame, folder / name)
    out = {**(manifest or {}), "outputs": {name: hash_file(folder / name) for name in files}}
    write_json_atomic(out, folder / MANIFEST_FILE)
    log.info("wrote %s", folder)
    return out


@dataclass(frozen=True)
class PairsFolder:
    """A complete pairs folder, as :func:`open_pairs` returns it.

    Attributes
    ----------
    root : Path
        The folder.
    manifest : dict
        ``manifest.json`` (see :mod:`data_pipelines.manifest`).
    """

    root: Path
    manifest: dict

    pairs = property(lambda self: self.root / PAIRS_FILE)
    quarantine = property(lambda self: self.root / QUARANTINE_FILE)
    prices = property(lambda self: self.root / PRICES_FILE)

    @property
    def labels(self) -> list[Label]:
        """The label columns of the pairs."""
        return [Label.from_dict(d) for d in self.manifest.get("labels", [])]

    @property
    def default_label(self) -> Label | None:
        """The label a fit trains on unless told otherwise (None in a manifest that predates it)."""
        d = self.manifest.get("default_label")
        return None if d is None else Label.from_dict(d)

    @property
    def calendar(self) -> str:
        """The exchange calendar the entries were aligned on (the manifest's ``prices.calendar``)."""
        return self._prices_section()["calendar"]

    @property
    def latency(self) -> pd.Timedelta:
        """The latency from publication to the first tradable print (``prices.latency_seconds``)."""
        return pd.Timedelta(seconds=self._prices_section()["latency_seconds"])

    def _prices_section(self) -> dict:
        section = self.manifest.get("prices")
        if not isinstance(section, dict):
            raise DataContractError("manifest predates prices.parquet: run newsalpha pairs again", file=str(self.root))
        return section

    def read_pairs(self, columns: list[str] | None = None) -> pd.DataFrame:
        return pd.read_parquet(self.pairs, columns=columns)

    def read_prices(self) -> pd.DataFrame:
        """``prices.parquet`` (the price contract of a pairs folder); refused if the folder predates it."""
        if not self.prices.is_file():
            raise DataContractError(
                "this pairs folder has no prices.parquet: run newsalpha pairs again", file=str(self.root)
            )
        return pd.read_parquet(self.prices)


def open_pairs(path: str | os.PathLike, *, verify: bool = True) -> PairsFolder:
    """Open a pairs folder (or the ``pairs.parquet`` inside one) that is complete: what every reader calls.

    Complete means: ``manifest.json`` exists and parses, and every file its ``outputs`` lists exists with that
    sha256 (``verify=False`` skips the hashing, not the other checks).

    Raises
    ------
    DataContractError
        One line naming the folder or file and what to do (run ``newsalpha pairs`` again).
    """
    path = Path(path)
    root = path.parent if path.suffix == ".parquet" else path
    if not root.is_dir():
        raise DataContractError("pairs folder not found (give the folder newsalpha pairs wrote)", file=str(root))
    manifest_path = root / MANIFEST_FILE
    if not manifest_path.is_file():
        raise DataContractError(
            "not a complete pairs folder: no manifest.json (the run that wrote it was interrupted, or this is not a "
            "pairs folder); run newsalpha pairs again",
            file=str(root),
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise DataContractError(f"manifest is not valid JSON ({err})", file=str(manifest_path)) from None
    outputs = manifest.get("outputs") if isinstance(manifest, dict) else None
    if not isinstance(outputs, dict) or PAIRS_FILE not in outputs:
        raise DataContractError("manifest lists no output files: run newsalpha pairs again", file=str(manifest_path))
    for name, sha in outputs.items():
        file = root / name
        if Path(name).name != name or not file.is_file():
            raise DataContractError(
                f"{name} is missing from the pairs folder: run newsalpha pairs again", file=str(root)
            )
        if verify and hash_file(file) != sha:
            raise DataContractError(
                "does not match the manifest (changed, or left by an interrupted run, after the manifest was "
                "written): run newsalpha pairs again",
                file=str(file),
            )
    return PairsFolder(root, manifest)
