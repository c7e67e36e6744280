"""Progress bars for long work (tqdm on stderr, shown only on a terminal unless asked)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tqdm.auto import tqdm

__all__ = ["progress_bar", "slow_start_notice"]


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


@contextmanager
def slow_start_notice(message: str, after: float = 2.0) -> Iterator[None]:
    """Print ``message`` on stderr if the block is still running after ``after`` seconds.

    For work that is instant once done and slow only the first time (numba compiling its
    loops after installation): silent when the cache is warm, said while it is not.
    """
    timer = threading.Timer(after, lambda: print(message, file=sys.stderr, flush=True))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
