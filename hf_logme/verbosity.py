"""How loud the Hugging Face libraries are while hf-logme works, through their own controls.

Loading a checkpoint makes transformers draw a "Loading weights" bar and log a LOAD REPORT
(the head it initialised), huggingface_hub draws download bars and datasets its map bars. For a
ranking of many candidates that is noise around hf-logme's own bars: :func:`quiet_libraries`
silences them for the duration of a block and restores every setting it changed on exit.
hf-logme's own loggers and bars are left alone.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator

logger = logging.getLogger(__name__)

LIBRARIES = ("transformers", "huggingface_hub", "datasets")


@contextlib.contextmanager
def quiet_libraries(enabled: bool | None = None) -> Iterator[None]:
    """Silence transformers', huggingface_hub's and datasets' own logs and bars in a block.

    Their loggers are set to ERROR and their progress bars disabled (huggingface_hub's only for
    its own ``huggingface_hub.*`` bars, so bars drawn with ``huggingface_hub.utils.tqdm`` by
    hf-logme still show). Every setting is restored on exit, also after an exception; blocks nest.

    Args:
        enabled: True silences, False changes nothing. None (default) silences unless the
            ``hf_logme`` logger shows INFO, i.e. unless the user asked for more output
            (``hf-logme -v``, or ``logging.getLogger("hf_logme").setLevel(logging.INFO)``).

    Example:
        >>> with quiet_libraries():
        ...     pass  # from_pretrained here prints no "Loading weights" bar, no LOAD REPORT
    """
    if enabled is None:
        enabled = not logging.getLogger("hf_logme").isEnabledFor(logging.INFO)
    elif not isinstance(enabled, bool):
        raise TypeError(f"enabled must be True, False or None; got {enabled!r}.")
    if not enabled:
        yield
        return
    with contextlib.ExitStack() as restore:
        _quiet_hub_and_transformers(restore)
        _quiet_datasets(restore)
        yield


def _quiet_hub_and_transformers(restore: contextlib.ExitStack) -> None:
    from huggingface_hub.utils import logging as hub_logging
    from transformers.utils import logging as tf_logging

    hub_tqdm = importlib.import_module("huggingface_hub.utils.tqdm")  # the module, not the class
    states = dict(hub_tqdm.progress_bar_states)

    def reset_hub_bars() -> None:
        hub_tqdm.progress_bar_states.clear()
        hub_tqdm.progress_bar_states.update(states)

    restore.callback(reset_hub_bars)  # last: transformers' enable_progress_bar enables all hub bars
    _set_verbosity(restore, hub_logging.get_verbosity, hub_logging.set_verbosity)
    _set_verbosity(restore, tf_logging.get_verbosity, tf_logging.set_verbosity)
    if tf_logging.is_progress_bar_enabled():
        _without_warnings(tf_logging.disable_progress_bar)  # also turns all hub bars off...
        restore.callback(_without_warnings, tf_logging.enable_progress_bar)
    reset_hub_bars()  # ...so only the hub's own are, hf-logme's stay as they were
    # HF_HUB_DISABLE_PROGRESS_BARS=0 is the user saying "always show"; respect it.
    if hub_tqdm.HF_HUB_DISABLE_PROGRESS_BARS is None:
        hub_tqdm.disable_progress_bars("huggingface_hub")


def _without_warnings(switch) -> None:
    """Call transformers' bar switch, which also calls huggingface_hub's: that one warns when
    HF_HUB_DISABLE_PROGRESS_BARS is set (the hub's state is put back right after anyway)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        switch()


def _quiet_datasets(restore: contextlib.ExitStack) -> None:
    from datasets.utils import logging as ds_logging

    ds_tqdm = importlib.import_module("datasets.utils.tqdm")

    _set_verbosity(restore, ds_logging.get_verbosity, ds_logging.set_verbosity)
    if not ds_tqdm.are_progress_bars_disabled():
        ds_tqdm.disable_progress_bars()
        restore.callback(ds_tqdm.enable_progress_bars)


def _set_verbosity(restore: contextlib.ExitStack, get, set_) -> None:
    before = get()
    if before < logging.ERROR:
        set_(logging.ERROR)
        restore.callback(set_, before)


_VERBOSITY_ENV = {
    "huggingface_hub": "HF_HUB_VERBOSITY",
    "transformers": "TRANSFORMERS_VERBOSITY",
    "datasets": "DATASETS_VERBOSITY",
}


@contextlib.contextmanager
def libraries_debug() -> Iterator[None]:
    """DEBUG logs from the HF libraries too (``hf-logme -vvv``) in a block: through their
    environment variables for those not imported yet, their verbosity APIs for those that are;
    both restored on exit."""
    with contextlib.ExitStack() as restore:
        for library, variable in _VERBOSITY_ENV.items():
            restore.callback(restore_env, variable, os.environ.get(variable))
            os.environ[variable] = "debug"
            if library in sys.modules:
                module = importlib.import_module(f"{library}.utils.logging")
                restore.callback(module.set_verbosity, module.get_verbosity())
                module.set_verbosity(logging.DEBUG)
        yield


def restore_env(name: str, value: str | None) -> None:
    """Set ``name`` back to ``value``, or unset it when ``value`` is None."""
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
