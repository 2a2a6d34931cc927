"""Progress of a collection, as an injected observer (the CLI passes a rich one; the default is silent)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from auditor.collect.sources import SourceRecord


class Progress(Protocol):
    """Told about each collection step; must not raise."""

    def start(self, steps: Sequence[str]) -> None:
        """Collection begins; `steps` are the step labels in order."""

    def step(self, label: str) -> None:
        """Step `label` begins."""

    def done(self, label: str, records: Sequence[SourceRecord]) -> None:
        """Step `label` ended with these source records."""

    def finish(self) -> None:
        """Collection ended (the snapshot is being written or was written)."""


class NullProgress:
    """Reports nothing."""

    def start(self, steps: Sequence[str]) -> None:
        pass

    def step(self, label: str) -> None:
        pass

    def done(self, label: str, records: Sequence[SourceRecord]) -> None:
        pass

    def finish(self) -> None:
        pass
