"""The one text encoder: a pair's text -> the template -> token ids -> a padded batch.

Training (:class:`newsalpha.train.data.PairsDataModule`) and inference (:class:`newsalpha.NewsReturnPredictor`,
``newsalpha predict``) both encode through :class:`TextEncoder`, so what is evaluated is read exactly as what
ships. A template may use ``{text}`` (required) and ``{ticker}``, nothing else: never a date (the model would
learn the period instead of the news), no attribute or index lookups (``{text.__class__}``), no conversions
and no format specs (``{text:>999999999}`` would allocate a gigabyte).

``torch`` is imported only inside :meth:`TextEncoder.pad`, so importing this module stays cheap.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Any

import numpy as np

from data_pipelines.errors import ConfigError, DataContractError

TEMPLATE_FIELDS = ("text", "ticker")  # the only fields a template may use: never a date
DEFAULT_TEMPLATE = "{text}"


def validate_template(template: Any, where: str = "data.template") -> list[str]:
    """Check a text template and return the fields it uses, in order.

    Parameters
    ----------
    template : str
        A ``str.format`` template such as ``"{ticker}: {text}"``.
    where : str
        How the error names the template (a config key, or a file and field).

    Raises
    ------
    ConfigError
        Not a string, malformed, lacks ``{text}``, or uses anything but plain ``{text}`` / ``{ticker}``.
    """
    if not isinstance(template, str):
        raise ConfigError(f"{where} must be a string such as '{{ticker}}: {{text}}', got {template!r}")
    try:
        parts = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(template) if f is not None]
    except ValueError as err:
        raise ConfigError(f"{where} '{template}' is not a valid format string: {err}") from err
    fields = [f for f, _, _ in parts]
    bad = [f for f in fields if f not in TEMPLATE_FIELDS]
    if bad:
        raise ConfigError(
            f"{where} may only use {{text}} and {{ticker}} (never a date), got {{{bad[0]}}} in '{template}'"
        )
    decorated = [f for f, spec, conv in parts if spec or conv]
    if decorated:
        raise ConfigError(f"{where} may not use conversions or format specs, got one on {{{decorated[0]}}}")
    if "text" not in fields:
        raise ConfigError(f"{where} must contain {{text}}, got '{template}'")
    return fields


class TextEncoder:
    """Template, tokenise and pad texts the way the model was trained to read them.

    Parameters
    ----------
    tokenizer : transformers.PreTrainedTokenizerFast
        The backbone's fast tokenizer; it must have a pad token.
    template : str
        See :func:`validate_template`.
    max_length : int
        Truncation length in tokens (special tokens included).
    where : str
        How template errors name the template.
    """

    def __init__(
        self, tokenizer: Any, template: str = DEFAULT_TEMPLATE, max_length: int = 128, where: str = ""
    ) -> None:
        self.fields = validate_template(template, where or "data.template")
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2:
            raise ConfigError(f"max_length must be a whole number >= 2, got {max_length!r}")
        self.tokenizer = tokenizer
        self.template = template
        self.max_length = max_length

    @property
    def uses_ticker(self) -> bool:
        return "ticker" in self.fields

    def render(self, texts: Sequence[Any], tickers: Sequence[Any] | None = None, rows: Sequence[Any] = ()) -> list[str]:
        """Check each text and apply the template.

        Parameters
        ----------
        texts : sequence of str
        tickers : sequence, optional
            Needed when the template uses ``{ticker}``; each is rendered with ``str``.
        rows : sequence, optional
            Row labels for error messages (default positions).

        Raises
        ------
        DataContractError
            A text is empty or not a string (names the row), or the template needs tickers and none came.
        """
        rows = list(rows) if len(rows) else list(range(len(texts)))
        if self.uses_ticker and tickers is None:
            raise DataContractError(
                f"the text template '{self.template}' uses the ticker: pass a DataFrame with a 'ticker' column",
                column="ticker",
            )
        for row, text in zip(rows, texts, strict=True):
            if not isinstance(text, str) or not text.strip():
                raise DataContractError(f"text is empty or not a string ({text!r})", row=row, column="text")
        if self.template == DEFAULT_TEMPLATE:
            return list(texts)
        keys = [""] * len(texts) if tickers is None else [str(k) for k in tickers]
        return [self.template.format(text=t, ticker=k) for t, k in zip(texts, keys, strict=True)]

    def encode(
        self, texts: Sequence[Any], tickers: Sequence[Any] | None = None, rows: Sequence[Any] = ()
    ) -> list[list[int]]:
        """Token ids of each rendered text, truncated to ``max_length``, special tokens added, not padded."""
        rendered = self.render(texts, tickers, rows)
        if not rendered:
            return []
        return self.tokenizer(rendered, truncation=True, max_length=self.max_length, add_special_tokens=True)[
            "input_ids"
        ]

    def pad(self, rows: Sequence[Sequence[int]]) -> dict[str, Any]:
        """Right-pad token ids to the longest row: ``input_ids`` and ``attention_mask``, int64 tensors.

        Pooling reads the mask, so it finds the real tokens whichever side a batch is padded on.
        """
        import torch

        width = max(len(r) for r in rows)
        ids = np.full((len(rows), width), self.tokenizer.pad_token_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for j, row in enumerate(rows):
            ids[j, : len(row)] = row
            mask[j, : len(row)] = 1
        return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}
