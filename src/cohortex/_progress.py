"""Progress of long work: a tqdm bar on a terminal, a line every half minute in a log.

One style for everything long: cohortex's own loops (import, training, t-SNE) call
:func:`progress_bar`; Dask computations (a DE pass, PCA's sweeps) are shown by
:func:`dask_progress`, which feeds the same display from Dask's scheduler callbacks.
"""

from __future__ import annotations

import sys
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from tqdm.auto import tqdm

__all__ = [
    "DASK_DELAY",
    "LOG_EVERY",
    "LogProgress",
    "dask_progress",
    "progress_bar",
    "slow_start_notice",
]


def progress_bar(
    total: int, desc: str, enabled: bool | None = None, unit: str = "block", delay: float = 0.0
) -> Any:
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
    delay : float, default 0
        Seconds before a terminal bar appears (work that ends sooner shows none).
    """
    if enabled is None and not _terminal():
        return LogProgress(total, desc, unit)
    disable = None if enabled is None else not enabled
    return tqdm(total=total, desc=desc, disable=disable, unit=unit, leave=False, delay=delay)


#: seconds between two progress lines written to a non-terminal
LOG_EVERY = 30.0


def _terminal() -> bool:
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


class LogProgress:
    """tqdm's ``update``/``set_postfix``/``close`` as lines on stderr, at most one every
    :data:`LOG_EVERY` seconds: ``training: 12/100 epoch, 1 min 5 s (loss=0.013, val=0.014)``."""

    #: the instances not yet closed, so that a Dask computation inside one stays quiet
    open: ClassVar[weakref.WeakSet[LogProgress]] = weakref.WeakSet()

    def __init__(self, total: int, desc: str, unit: str) -> None:
        LogProgress.open.add(self)
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

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()  # work cut short by an error must not leave its display open

    def close(self) -> None:
        LogProgress.open.discard(self)
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


#: seconds a Dask computation runs before its terminal bar appears (a log waits LOG_EVERY)
DASK_DELAY = 1.0


@contextmanager
def dask_progress(desc: str, enabled: bool | None = None) -> Iterator[None]:
    """Show every Dask computation started in the block as a :func:`progress_bar` of its tasks.

    Each ``compute`` gets its own display (``de: 40/96 task``), shown only once it has run
    :data:`DASK_DELAY` seconds (on a terminal) or :data:`LOG_EVERY` seconds (in a log), and
    not at all while another cohortex bar is open: an epoch's chunk reads inside the training
    bar stay quiet. Dask's local schedulers only; a distributed client has its dashboard.

    Parameters
    ----------
    desc : str
        Label of the displays, e.g. the command's name.
    enabled : bool or None, default None
        As :func:`progress_bar`; ``False`` registers nothing.
    """
    if enabled is False:
        yield
        return
    from dask.callbacks import Callback

    class _Tasks(Callback):  # type: ignore[misc]  # dask is untyped
        bar: Any = None

        def _start_state(self, dsk: Any, state: dict[str, Any]) -> None:
            if tqdm._instances or LogProgress.open:  # type: ignore[attr-defined]
                return  # inside another display: one bar at a time
            total = sum(len(state[k]) for k in ("ready", "waiting", "running", "finished"))
            self.bar = progress_bar(total, desc, enabled, unit="task", delay=DASK_DELAY)

        def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker: Any) -> None:
            if self.bar is not None:
                self.bar.update(1)

        def _finish(self, dsk: Any, state: Any, errored: bool) -> None:
            if self.bar is not None:
                self.bar.close()
                self.bar = None

    with _Tasks():
        yield
