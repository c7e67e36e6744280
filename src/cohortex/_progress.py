"""Progress of long work: a tqdm bar on a terminal, a line every half minute in a log."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tqdm.auto import tqdm

__all__ = ["LOG_EVERY", "LogProgress", "progress_bar", "slow_start_notice"]


def progress_bar(total: int, desc: str, enabled: bool | None = None, unit: str = "block") -> Any:
    """A progress display over ``total`` steps.

    Parameters
    ----------
    total : int
        Number of steps.
    desc : str
        Label shown before the bar.
    enabled : bool or None, default None
        ``None``: a tqdm bar when stderr is a terminal, otherwise (a log, a batch job) a plain
        line every :data:`LOG_EVERY` seconds once the work has run that long, so short work
        stays silent and long work is seen; ``True`` forces the bar, ``False`` silences both.
    unit : str
        Name of one step.
    """
    if enabled is None and not _terminal():
        return LogProgress(total, desc, unit)
    disable = None if enabled is None else not enabled
    return tqdm(total=total, desc=desc, disable=disable, unit=unit, leave=False)


#: seconds between two progress lines written to a non-terminal
LOG_EVERY = 30.0


def _terminal() -> bool:
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


class LogProgress:
    """tqdm's ``update``/``set_postfix``/``close`` as lines on stderr, at most one every
    :data:`LOG_EVERY` seconds: ``training: 12/100 epoch, 1 min 5 s (loss=0.013, val=0.014)``."""

    def __init__(self, total: int, desc: str, unit: str) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.n = 0
        self.postfix = ""
        self.start = self.last = time.monotonic()
        self.said = False

    def update(self, n: int = 1) -> None:
        if n == 0:  # a resumed job stating where it starts
            return
        self.n += n
        now = time.monotonic()
        if now - self.last >= LOG_EVERY:
            self._say(now)

    def set_postfix(self, **values: Any) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def close(self) -> None:
        if self.said:  # a long job that was reported on: say that it ended
            self._say(time.monotonic())

    def _say(self, now: float) -> None:
        elapsed = int(now - self.start)
        clock = f"{elapsed // 60} min {elapsed % 60} s" if elapsed >= 60 else f"{elapsed} s"
        tail = f" ({self.postfix})" if self.postfix else ""
        print(f"{self.desc}: {self.n}/{self.total} {self.unit}, {clock}{tail}", file=sys.stderr)
        self.last, self.said = now, True


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
