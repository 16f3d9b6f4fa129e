"""Simple baselines a news model must beat, written as predictions in the model's own contract.

Each baseline is fitted on the ``train`` split of a pairs table, tuned (where it has a penalty) on the
``val`` split, and predicts the ``test`` split. The output has the predictions contract of
:mod:`data_pipelines.contracts` (``article_id, ticker, session, split, prediction, target`` and the pairs'
``entry_at, entry_kind``), written with :func:`data_pipelines.io.write_predictions` so that the file carries
its :class:`~data_pipelines.contracts.Label`: the evaluation scores baselines and models with the same code.

- ``zero``: predicts a return of zero (the benchmark of the out-of-sample R^2 against zero).
- ``train_mean``: predicts the mean training label (the historical-mean benchmark).
- ``tfidf_ridge``: TF-IDF of the article text, ridge regression, penalty chosen on ``val``.

The frozen-backbone embedding baseline needs a language model, so it lives in
:mod:`newsalpha.embedding_baseline` and reuses :func:`select_ridge` from here.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_pipelines.contracts import PAIRS_FILE, PREDICTION_COLUMNS, PREDICTION_OPTIONAL, Label, require_columns
from data_pipelines.errors import DataContractError
from data_pipelines.io import write_json_atomic, write_predictions

log = logging.getLogger(__name__)

DEFAULT_ALPHAS = tuple(float(a) for a in np.logspace(-2, 7, 10))
BASELINE_NAMES = ("zero", "train_mean", "tfidf_ridge")


def check_pairs(pairs: pd.DataFrame, target: str, *, file: str | None = None, need_text: bool = False) -> pd.DataFrame:
    """Validate the columns a baseline needs and return the pairs with a finite-target flag.

    Parameters
    ----------
    pairs : DataFrame
        The pairs table (``article_id, ticker, session, split`` and the ``target`` label column).
    target : str
        The label column, e.g. ``"exret_h1"``.
    file : str, optional
        The file the pairs came from, named in errors.
    need_text : bool
        Whether the ``text`` column is required.

    Returns
    -------
    DataFrame
        ``pairs`` (not copied) after validation.
    """
    cols = ["article_id", "ticker", "session", "split", target] + (["text"] if need_text else [])
    require_columns(pairs, cols, file=file, what="pairs")
    if not pd.api.types.is_numeric_dtype(pairs[target]):
        raise DataContractError(f"label column is not numeric ({pairs[target].dtype})", file=file, column=target)
    if not (pairs["split"] == "train").any():
        raise DataContractError(
            "no rows in the 'train' split: a baseline has nothing to fit", file=file, column="split"
        )
    return pairs


def fit_rows(pairs: pd.DataFrame, split: str, target: str) -> pd.DataFrame:
    """Rows of ``split`` with a finite label; rows without one are logged, never used to fit."""
    rows = pairs[pairs["split"] == split]
    finite = np.isfinite(rows[target].to_numpy(dtype=float))
    if not finite.all():
        log.warning("%d %s rows have no finite %s and are not used to fit", int((~finite).sum()), split, target)
    return rows[finite]


def predictions_frame(rows: pd.DataFrame, prediction: np.ndarray | float, target: str) -> pd.DataFrame:
    """Build a predictions-contract table for ``rows`` of a pairs table.

    Parameters
    ----------
    rows : DataFrame
        Pairs rows being predicted.
    prediction : ndarray or float
        One prediction per row (or one for all).
    target : str
        The label column copied into ``target``.

    Returns
    -------
    DataFrame
        Columns ``article_id, ticker, session, split, prediction, target`` and, where the pairs have them,
        ``entry_at, entry_kind`` (the entry print the evaluation forms portfolios at).
    """
    carried = [c for c in PREDICTION_OPTIONAL if c in rows.columns]
    out = rows[["article_id", "ticker", "session", "split"]].reset_index(drop=True).copy()
    out["prediction"] = np.broadcast_to(np.asarray(prediction, dtype=float), (len(out),)).copy()
    out["target"] = rows[target].to_numpy(dtype=float)
    for col in carried:
        out[col] = rows[col].to_numpy()
    return out[[*PREDICTION_COLUMNS, *carried]]


def zero_baseline(pairs: pd.DataFrame, target: str, *, splits: Sequence[str] = ("test",)) -> pd.DataFrame:
    """Predict a return of zero for every row of ``splits``."""
    check_pairs(pairs, target)
    return predictions_frame(pairs[pairs["split"].isin(splits)], 0.0, target)


def train_mean_baseline(pairs: pd.DataFrame, target: str, *, splits: Sequence[str] = ("test",)) -> pd.DataFrame:
    """Predict the mean training label for every row of ``splits``."""
    check_pairs(pairs, target)
    train = fit_rows(pairs, "train", target)
    mean = float(train[target].mean()) if len(train) else 0.0
    log.info("train_mean baseline: mean %s over %d train rows = %.6g", target, len(train), mean)
    return predictions_frame(pairs[pairs["split"].isin(splits)], mean, target)


def require_val(n_val: int) -> None:
    """Raise when there is no labelled validation row to choose a penalty on."""
    if n_val == 0:
        raise DataContractError("no rows with a label in the 'val' split: the ridge penalty cannot be chosen")


def select_ridge(
    make_model: Callable[[float], Any],
    x_train: Any,
    y_train: np.ndarray,
    x_val: Any,
    y_val: np.ndarray,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
) -> tuple[Any, float, dict[float, float]]:
    """Fit one model per penalty on train and keep the one with the lowest validation MSE.

    Parameters
    ----------
    make_model : callable
        ``make_model(alpha)`` returns an unfitted scikit-learn regressor.
    x_train, y_train, x_val, y_val
        Features and labels of the train and validation splits.
    alphas : sequence of float
        Candidate penalties.

    Returns
    -------
    model, alpha, val_mse
        The fitted best model, its penalty, and the validation MSE of every candidate.
    """
    require_val(len(y_val))
    best: tuple[float, float, Any] | None = None
    scores: dict[float, float] = {}
    for alpha in alphas:
        model = make_model(float(alpha)).fit(x_train, y_train)
        mse = float(np.mean((model.predict(x_val) - y_val) ** 2))
        scores[float(alpha)] = mse
        if best is None or mse < best[0]:
            best = (mse, float(alpha), model)
    assert best is not None
    log.info("ridge penalty %.3g chosen on val (MSE %.6g)", best[1], best[0])
    if len(alphas) > 1 and best[1] in (min(alphas), max(alphas)):
        log.warning("ridge penalty %.3g is at the edge of the grid %s: widen it", best[1], list(alphas))
    return best[2], best[1], scores


def tfidf_ridge_baseline(
    pairs: pd.DataFrame,
    target: str,
    *,
    splits: Sequence[str] = ("test",),
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    max_features: int = 50_000,
    ngram_range: tuple[int, int] = (1, 2),
    min_df: int = 2,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """TF-IDF (fitted on train text only) + ridge, penalty chosen on the validation split.

    Returns
    -------
    predictions, info
        The predictions of ``splits`` and a dict with the chosen ``alpha`` and the validation MSEs.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import Ridge

    check_pairs(pairs, target, need_text=True)
    train, val = fit_rows(pairs, "train", target), fit_rows(pairs, "val", target)
    require_val(len(val))
    min_df = min_df if train["text"].nunique() >= 10 * min_df else 1  # tiny corpora keep every word
    vec = TfidfVectorizer(max_features=max_features, ngram_range=ngram_range, min_df=min_df, sublinear_tf=True)
    x_train = vec.fit_transform(train["text"].fillna("").astype(str))
    x_val = vec.transform(val["text"].fillna("").astype(str))
    model, alpha, scores = select_ridge(
        lambda a: Ridge(alpha=a), x_train, train[target].to_numpy(float), x_val, val[target].to_numpy(float), alphas
    )
    rows = pairs[pairs["split"].isin(splits)]
    pred = model.predict(vec.transform(rows["text"].fillna("").astype(str))) if len(rows) else np.empty(0)
    info = {"alpha": alpha, "val_mse": {str(k): v for k, v in scores.items()}, "n_features": len(vec.vocabulary_)}
    return predictions_frame(rows, pred, target), info


def as_label(target: Label | str) -> Label:
    """The :class:`Label` of ``target``: a label, or a label column name a user typed (``exret_h1``)."""
    return target if isinstance(target, Label) else Label.parse(target)


def write_baseline(preds: pd.DataFrame, out_dir: str | os.PathLike, name: str, label: Label, info: dict) -> Path:
    """Write ``out_dir/<name>.parquet`` (carrying ``label``) and ``out_dir/<name>.json`` (``info``)."""
    path = write_predictions(preds, Path(out_dir) / f"{name}.parquet", label)
    write_json_atomic({"name": name, "label": label.to_dict(), **info}, Path(out_dir) / f"{name}.json")
    log.info("baseline %s: %d predictions -> %s", name, len(preds), path)
    return path


def run_baselines(
    pairs: pd.DataFrame | str | os.PathLike,
    target: Label | str,
    out_dir: str | os.PathLike,
    *,
    names: Sequence[str] = BASELINE_NAMES,
    splits: Sequence[str] = ("test",),
) -> dict[str, Path]:
    """Fit every baseline in ``names`` and write ``out_dir/<name>.parquet`` (+ ``<name>.json``).

    Parameters
    ----------
    pairs : DataFrame or path
        The pairs table, or the path of ``pairs.parquet``.
    target : Label or str
        The label to predict, or its column name, e.g. ``"exret_h1"``.
    out_dir : path
        Folder for the baseline predictions, usually ``<run>/baselines``.
    names : sequence of str
        Which of :data:`BASELINE_NAMES` to run.
    splits : sequence of str
        Splits to write predictions for.

    Returns
    -------
    dict
        ``{name: path of its predictions parquet}``.
    """
    label = as_label(target)
    column = label.column
    file = None
    if not isinstance(pairs, pd.DataFrame):
        file = str(pairs)
        pairs = read_pairs(file)
    check_pairs(pairs, column, file=file, need_text="tfidf_ridge" in names)
    unknown = sorted(set(names) - set(BASELINE_NAMES))
    if unknown:
        raise DataContractError(f"unknown baseline(s) {', '.join(unknown)}; known: {', '.join(BASELINE_NAMES)}")
    paths = {}
    for name in names:
        info: dict[str, Any] = {"splits": list(splits)}
        if name == "zero":
            preds = zero_baseline(pairs, column, splits=splits)
        elif name == "train_mean":
            preds = train_mean_baseline(pairs, column, splits=splits)
            info["train_mean"] = float(preds["prediction"].iloc[0]) if len(preds) else None
        else:
            preds, extra = tfidf_ridge_baseline(pairs, column, splits=splits)
            info.update(extra)
        paths[name] = write_baseline(preds, out_dir, name, label, info)
    return paths


def read_pairs(path: str | os.PathLike, columns: Callable[[str], bool] | None = None) -> pd.DataFrame:
    """Read a pairs Parquet file (or the ``pairs.parquet`` of a folder); a missing or bad file is a named error.

    ``columns``, when given, selects the columns to read by name.
    """
    path = Path(path)
    path = path / PAIRS_FILE if path.is_dir() else path
    if not path.is_file():
        raise DataContractError("pairs file not found", file=str(path))
    try:
        if columns is not None:  # skip what is not needed (the text column of millions of pairs)
            import pyarrow.parquet as pq

            return pd.read_parquet(path, columns=[c for c in pq.read_schema(path).names if columns(c)])
        return pd.read_parquet(path)
    except Exception as err:  # pyarrow raises several types for a corrupt file
        raise DataContractError(f"cannot read pairs Parquet ({type(err).__name__}: {err})", file=str(path)) from err
