"""Progress bars for long work (tqdm on stderr, shown only on a terminal unless asked)."""

from __future__ import annotations

from typing import Any

from tqdm.auto import tqdm

__all__ = ["progress_bar"]


def progress_bar(total: int, desc: str, enabled: bool | None = None, unit: str = "block") -> Any:
    """A tqdm bar over ``total`` steps.

    Parameters
    ----------
    total : int
        Number of steps.
    desc : str
        Label shown before the bar.
    enabled : bool or None, default None
        ``None`` shows the bar only when stderr is a terminal; ``True``/``False`` force it.
    unit : str
        Name of one step.
    """
    disable = None if enabled is None else not enabled
    return tqdm(total=total, desc=desc, disable=disable, unit=unit, leave=False)
