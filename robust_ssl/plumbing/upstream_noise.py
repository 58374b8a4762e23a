"""Two lines the pinned libraries print into every run's log that no user of the suite can act
on: Lightning's advertisement for its hosted logger, and torch's FutureWarning against the
`LeafSpec` that Lightning's own `_pytree` helper still constructs (pytorch-lightning 2.6.6, the
newest, with torch >= 2.10). Each is dropped by its exact text, so that every other warning,
from these libraries or the suite, still reaches the log."""

from __future__ import annotations

import logging
import warnings

LEAFSPEC = r"`isinstance\(treespec, LeafSpec\)` is deprecated"
LITLOGGER_TIP = "💡 Tip: For seamless cloud logging"
LIGHTNING_INFO_LOGGER = "pytorch_lightning.utilities.rank_zero"  # where rank_zero_info writes


def _not_the_tip(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith(LITLOGGER_TIP)


def silence() -> None:
    """Idempotent: the filter functions are module-level, so adding them twice adds nothing."""
    warnings.filterwarnings("ignore", message=LEAFSPEC, category=FutureWarning)
    logging.getLogger(LIGHTNING_INFO_LOGGER).addFilter(_not_the_tip)
