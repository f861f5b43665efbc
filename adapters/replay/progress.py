"""A rich progress bar for replay: settlements done, rate and time left, shown only on a terminal."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeRemainingColumn
from rich.text import Text

__all__ = ["replay_progress"]


class _RateColumn(ProgressColumn):
    """Settlements per second since the start."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        rate = task.completed / elapsed if elapsed > 0 else 0.0
        return Text(f"{rate:,.0f} {self.unit}", style="progress.data.speed")


class _Tracker:
    def __init__(self, progress: Progress | None, task: int | None) -> None:
        self._progress = progress
        self._task = task

    def advance(self, count: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, count)


@contextlib.contextmanager
def replay_progress(total: int | None, *, lang: str = "zh", enabled: bool | None = None) -> Iterator[_Tracker]:
    """Yield a tracker whose ``advance(n)`` moves the bar; nothing is drawn when stderr is not a terminal."""
    console = Console(stderr=True)
    show = console.is_terminal if enabled is None else enabled
    if not show:
        yield _Tracker(None, None)
        return
    label = "回放结算" if lang == "zh" else "replaying settlements"
    unit = "笔/秒" if lang == "zh" else "settlements/s"
    progress = Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), _RateColumn(unit), TimeRemainingColumn(),
        console=console, transient=False,
    )
    with progress:
        task = progress.add_task(label, total=total)
        yield _Tracker(progress, task)
    sys.stderr.flush()
