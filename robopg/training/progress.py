"""Progress of a long job: a live bar on a terminal, one plain line per update elsewhere (CI, logs)."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


class ProgressReporter:
    def __init__(self, description: str, total: int, initial: int = 0, enabled: bool = True) -> None:
        self.description = description
        self.total = total
        self.enabled = enabled
        self.console = Console(stderr=True)
        self.live = enabled and sys.stderr.isatty()
        self.bar: Progress | None = None
        if self.live:
            self.bar = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                TimeRemainingColumn(), console=self.console,
            )
            self.task = self.bar.add_task(description, total=total, completed=initial, info="")
            self.bar.start()

    def update(self, step: int, info: str) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=step, info=info)
        elif self.enabled:
            print(f"{self.description} {step}/{self.total} {info}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
