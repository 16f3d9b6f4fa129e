"""The zero-shot general model: an instruction-tuned LM asked whether each article moves its stock up or down.

The mission's thesis is that a general chat model reads news well but is a poor trader until it is
specialised. This baseline measures the general model as it is: the embedded SmolLM2-135M-Instruct (or any
causal LM) reads a short instruction with the article and its ticker, and the score of the article is

    log P(answer "up") - log P(answer "down")

at the first token of the assistant's answer (each answer's casings and leading-space variants pooled with
logsumexp). Nothing is trained. To be scored like every other baseline (squared error, Diebold-Mariano), the
score is mapped to return units by a one-variable least-squares line fitted on the validation split (a
monotone map: the IC is the score's own). Predictions follow the predictions contract and carry their label.

Cheap by construction: texts are sorted by length and batched with right padding, the article (never the
question) is truncated so the prompt fits ``max_length`` tokens, only the last real position goes through the
output projection, and scores are cached on disk per prompt hash (``$NEWSALPHA_CACHE/zeroshot``), so a rerun
or a second market sharing texts costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_pipelines.contracts import Label
from data_pipelines.errors import ConfigError
from data_pipelines.io import write_json_atomic, write_parquet_atomic, write_predictions
from evaluation.baselines import check_pairs, fit_rows, predictions_frame, read_pairs

log = logging.getLogger(__name__)

NAME = "zero_shot"
PROMPT_VERSION = 1  # part of the cache key: bump when the prompt or the scoring changes
SYSTEM = "You are a stock market analyst."
QUESTION = (
    "News about {ticker}: {text}\n"
    "Will the stock of {ticker} go up or down over the next trading day? Answer with one word: up or down."
)
ANSWERS: dict[str, tuple[str, ...]] = {"up": ("up", "Up", " up", " Up"), "down": ("down", "Down", " down", " Down")}
_MARK = "\x00ARTICLE\x00"


def answer_ids(tokenizer: Any, answers: dict[str, tuple[str, ...]] = ANSWERS) -> tuple[list[int], list[int]]:
    """The first-token ids of each "up" and "down" variant (deduplicated).

    Raises
    ------
    ConfigError
        The two answers share a first token, so the model could not tell them apart.
    """
    ids = {}
    for key in ("up", "down"):
        ids[key] = sorted({tokenizer.encode(v, add_special_tokens=False)[0] for v in answers[key]})
    if set(ids["up"]) & set(ids["down"]):
        raise ConfigError(f"zero-shot answers 'up' and 'down' share a first token ({ids}): choose other words")
    return ids["up"], ids["down"]


def _prompt_pieces(tokenizer: Any, ticker: str) -> tuple[str, str]:
    """The prompt before and after the article for ``ticker``: the chat template when the tokenizer has one."""
    question = QUESTION.format(ticker=ticker, text=_MARK)
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]
        full = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    else:  # a plain tokenizer (tests): the same words, no chat markup
        full = f"{SYSTEM}\n{question}\nAnswer:"
    before, after = full.split(_MARK)
    return before, after


def encode_prompts(tokenizer: Any, texts: Sequence[str], tickers: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids of each prompt, at most ``max_length``: the article is truncated, the question is kept whole.

    Raises
    ------
    ConfigError
        ``max_length`` leaves no room for the article.
    """

    def enc(strings: Sequence[str]) -> list[list[int]]:
        return tokenizer(list(strings), add_special_tokens=False)["input_ids"] if strings else []

    pieces = [_prompt_pieces(tokenizer, str(t)) for t in tickers]
    before, after, body = enc([p[0] for p in pieces]), enc([p[1] for p in pieces]), enc([str(x) for x in texts])
    bos = [tokenizer.bos_token_id] if getattr(tokenizer, "add_bos_token", False) and tokenizer.bos_token_id else []
    out = []
    for b, a, t in zip(before, after, body, strict=True):
        room = max_length - len(bos) - len(b) - len(a)
        if room < 1:
            raise ConfigError(
                f"zero-shot max_length {max_length} leaves no room for the article (the prompt takes {len(b) + len(a)})"
            )
        out.append(bos + b + t[:room] + a)
    return out


def _cache_file(model_path: str, max_length: int, cache_dir: str | os.PathLike | None) -> Path:
    """One cache file per (model weights' config, prompt version, max_length)."""
    from newsalpha.train.backbones import cache_dir as default_cache

    config = Path(model_path) / "config.json"
    ident = config.read_text(encoding="utf-8") if config.is_file() else str(model_path)
    key = json.dumps([ident, PROMPT_VERSION, SYSTEM, QUESTION, ANSWERS, max_length], sort_keys=True)
    folder = Path(cache_dir) if cache_dir is not None else default_cache() / "zeroshot"
    return folder / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.parquet"


def _load_model(model_path: str, device: str) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM

    from newsalpha.train.backbones import load_tokenizer

    tokenizer = load_tokenizer(model_path)
    try:
        model = AutoModelForCausalLM.from_pretrained(model_path).to(device).eval()
    except (OSError, ValueError) as err:
        raise ConfigError(f"zero-shot model '{model_path}' could not be loaded as a causal LM ({err})") from err
    return model, tokenizer


def _score_batches(model: Any, ids: list[list[int]], up: list[int], down: list[int], batch_size: int, pad: int):
    """log P(up) - log P(down) at the last real token of each prompt, in the order of ``ids``."""
    import torch

    out = np.empty(len(ids), dtype=np.float64)
    order = np.argsort([len(x) for x in ids], kind="stable")
    head, body = model.get_output_embeddings(), model.base_model
    device = next(model.parameters()).device
    with torch.inference_mode():
        for lo in range(0, len(order), batch_size):
            rows = order[lo : lo + batch_size]
            width = max(len(ids[i]) for i in rows)
            x = torch.full((len(rows), width), pad, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for j, i in enumerate(rows):
                x[j, : len(ids[i])], mask[j, : len(ids[i])] = torch.tensor(ids[i]), 1
            hidden = body(input_ids=x.to(device), attention_mask=mask.to(device)).last_hidden_state
            last = hidden[torch.arange(len(rows)), mask.sum(1).to(device) - 1]
            logp = torch.log_softmax(head(last).float(), dim=-1)
            score = torch.logsumexp(logp[:, up], -1) - torch.logsumexp(logp[:, down], -1)
            out[rows] = score.double().cpu().numpy()
    return out


def zero_shot_scores(
    texts: Sequence[str],
    tickers: Sequence[str],
    *,
    model: str = "smollm2",
    batch_size: int = 16,
    max_length: int = 128,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    device: str = "cpu",
) -> tuple[np.ndarray, dict[str, Any]]:
    """Zero-shot scores ``log P(up) - log P(down)`` of each (text, ticker).

    Parameters
    ----------
    texts, tickers : sequences of str
        The articles and the ticker each is about (same length).
    model : str
        A causal LM: ``"smollm2"`` (the embedded SmolLM2-135M-Instruct), a folder or a Hugging Face id.
    batch_size, max_length : int
        Prompts per forward pass; prompt length in tokens (the article is truncated to fit).
    cache_dir : path, optional
        Where scores are cached per prompt hash (default ``$NEWSALPHA_CACHE/zeroshot``).
    use_cache : bool
        Read and write the cache.
    device : str
        Torch device.

    Returns
    -------
    scores, info
        One float per text (higher: the model leans "up"); ``info`` has ``computed``, ``cached``,
        ``load_s`` (loading the model), ``seconds`` and ``texts_per_s`` (scoring the computed ones).
    """
    from newsalpha.train.backbones import resolve_backbone

    if len(texts) != len(tickers):
        raise ConfigError(f"zero-shot: {len(texts)} texts but {len(tickers)} tickers")
    path = resolve_backbone(model)
    keys = [hashlib.sha256(f"{k}\x00{t}".encode()).hexdigest() for k, t in zip(tickers, texts, strict=True)]
    cache = _cache_file(path, max_length, cache_dir)
    known = _read_cache(cache) if use_cache else {}
    todo = sorted({k for k in keys if k not in known})
    t0 = t1 = time.perf_counter()
    if todo:
        first = {k: i for i, k in reversed(list(enumerate(keys)))}
        lm, tokenizer = _load_model(path, device)
        t1 = time.perf_counter()
        up, down = answer_ids(tokenizer)
        idx = [first[k] for k in todo]
        ids = encode_prompts(tokenizer, [texts[i] for i in idx], [tickers[i] for i in idx], max_length)
        fresh = _score_batches(lm, ids, up, down, batch_size, int(tokenizer.pad_token_id))
        known.update(zip(todo, fresh.tolist(), strict=True))
        if use_cache:
            write_parquet_atomic(pd.DataFrame({"key": list(known), "score": list(known.values())}), cache)
    seconds = time.perf_counter() - t1
    info = {
        "model": path,
        "computed": len(todo),
        "cached": len(set(keys)) - len(todo),
        "load_s": round(t1 - t0, 2),
        "seconds": round(seconds, 2),
        "texts_per_s": round(len(todo) / seconds, 2) if todo and seconds > 0 else None,
        "max_length": max_length,
        "batch_size": batch_size,
    }
    return np.array([known[k] for k in keys], dtype=np.float64), info


def _read_cache(path: Path) -> dict[str, float]:
    if not path.is_file():
        return {}
    try:
        frame = pd.read_parquet(path)
    except Exception as err:  # a corrupt cache is rebuilt, never trusted
        log.warning("zero-shot cache %s is unreadable (%s): recomputing", path, type(err).__name__)
        return {}
    return dict(zip(frame["key"], frame["score"].astype(float), strict=True))


def zero_shot_baseline(
    pairs: pd.DataFrame,
    target: str,
    *,
    model: str = "smollm2",
    splits: Sequence[str] = ("test",),
    calibration_split: str = "val",
    max_calibration_rows: int = 1000,
    seed: int = 0,
    **score_kwargs: Any,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Score ``splits`` zero-shot and map the scores to returns with a line fitted on ``calibration_split``.

    Parameters
    ----------
    pairs : DataFrame
        The pairs table (``article_id, ticker, session, split, text`` and ``target``).
    target : str
        Label column, e.g. ``"exret_h1"``.
    model : str
        A causal LM (see :func:`zero_shot_scores`).
    splits : sequence of str
        Splits to predict.
    calibration_split : str
        Split whose labelled rows fit ``prediction = a + b x score`` (least squares).
    max_calibration_rows : int
        At most this many calibration rows (a fixed random sample) are scored.
    seed : int
        Seed of that sample.
    **score_kwargs
        ``batch_size``, ``max_length``, ``cache_dir``, ``use_cache``, ``device`` of :func:`zero_shot_scores`.

    Returns
    -------
    predictions, info
        Predictions in the predictions contract (``prediction`` in return units) and a dict with the
        calibration line, the raw scores' IC on the calibration rows and the scoring costs.
    """
    check_pairs(pairs, target, need_text=True)
    calib = fit_rows(pairs, calibration_split, target)
    if len(calib) < 3:
        raise ConfigError(f"zero-shot: fewer than 3 labelled '{calibration_split}' rows to calibrate on")
    if len(calib) > max_calibration_rows:
        calib = calib.sample(max_calibration_rows, random_state=seed).sort_index()
    rows = pairs[pairs["split"].isin(splits)]
    both = pd.concat([calib, rows])
    texts, tickers = both["text"].astype(str).tolist(), both["ticker"].astype(str).tolist()
    scores, info = zero_shot_scores(texts, tickers, model=model, **score_kwargs)
    s_cal, s_rows = scores[: len(calib)], scores[len(calib) :]
    y = calib[target].to_numpy(float)
    slope = float(np.cov(s_cal, y, bias=True)[0, 1] / np.var(s_cal)) if np.var(s_cal) > 0 else 0.0
    intercept = float(y.mean() - slope * s_cal.mean())
    info.update(
        {
            "intercept": intercept,
            "slope": slope,
            "calibration_split": calibration_split,
            "calibration_rows": len(calib),
            "calibration_ic": float(np.corrcoef(s_cal, y)[0, 1]) if np.std(s_cal) > 0 else float("nan"),
            "prompt": {"system": SYSTEM, "question": QUESTION, "answers": ANSWERS, "version": PROMPT_VERSION},
        }
    )
    preds = predictions_frame(rows, intercept + slope * s_rows, target)
    preds["score"] = s_rows  # the raw log-odds, kept for analysis
    return preds, info


def run_zero_shot_baseline(
    pairs: pd.DataFrame | str | os.PathLike, target: str, out_dir: str | os.PathLike, **kwargs: Any
) -> Path:
    """Run :func:`zero_shot_baseline` and write ``out_dir/zero_shot.parquet`` (with its label) and ``.json``.

    Parameters
    ----------
    pairs : DataFrame or path
        The pairs table or the path of ``pairs.parquet``.
    target : str
        Label column, e.g. ``"exret_h1"``.
    out_dir : path
        Usually ``<run>/baselines``.
    **kwargs
        Passed to :func:`zero_shot_baseline`.

    Returns
    -------
    Path
        The predictions file.
    """
    if not isinstance(pairs, pd.DataFrame):
        pairs = read_pairs(pairs)
    preds, info = zero_shot_baseline(pairs, target, **kwargs)
    out_dir = Path(out_dir)
    path = write_predictions(preds, out_dir / f"{NAME}.parquet", Label.parse(target))
    write_json_atomic({"name": NAME, "target": target, **info}, out_dir / f"{NAME}.json")
    log.info("baseline %s: %d predictions -> %s", NAME, len(preds), path)
    return path
