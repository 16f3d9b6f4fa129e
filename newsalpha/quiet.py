"""Known noise from the libraries, silenced in one place (issue: a demo printed 11 deprecation warnings and 9
"Loading weights" bars that say nothing to a user).

- ``quiet_progress()``: no transformers progress bars ("Loading weights", "Writing model shards") while loading or
  saving a model that newsalpha names in its own log line;
- ``silence_library_noise()``: the deprecation warnings raised inside Lightning and peft for calls they make
  (torch's ``LeafSpec``, transformers' ``is_gradient_checkpointing``), and :data:`LIGHTNING_NOISE`.

Only messages matched exactly are silenced; anything else still shows.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

# (category, message regex) of warnings raised inside the libraries for calls they make, not ours
LIBRARY_WARNINGS = (
    (FutureWarning, r"`isinstance\(treespec, LeafSpec\)` is deprecated"),
    (FutureWarning, r"`is_gradient_checkpointing` is deprecated"),
)
# Lightning info lines that say nothing to a user: its advertising tip, and the notice that newsalpha's own model
# summary replaces the default one
LIGHTNING_NOISE = ("💡 Tip:", "Trainer already configured with model summary callbacks")
LIGHTNING_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")


@contextmanager
def quiet_progress() -> Iterator[None]:
    """No transformers progress bars inside the block (restored after)."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


@contextmanager
def library_warnings_silenced() -> Iterator[None]:
    """Inside the block, :data:`LIBRARY_WARNINGS` are not shown."""
    with warnings.catch_warnings():
        for category, message in LIBRARY_WARNINGS:
            warnings.filterwarnings("ignore", message=message, category=category)
        yield


def _not_a_tip(record: logging.LogRecord) -> bool:
    return not str(record.getMessage()).startswith(LIGHTNING_NOISE)


def silence_library_noise() -> None:
    """Process-wide: drop :data:`LIBRARY_WARNINGS` and :data:`LIGHTNING_NOISE` (idempotent; ``fit`` calls it)."""
    for category, message in LIBRARY_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    for name in LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        if _not_a_tip not in logger.filters:
            logger.addFilter(_not_a_tip)
