"""The lines `fixadapter check` prints: one per step, OK / FAILED / SKIPPED, timed, with what to do.

Every line goes through mask_secrets before it is printed, although no step puts a password, a token or
a client secret in its text.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from fixadapter.logs import mask_secrets

NAME_WIDTH = 17


class Outcome(StrEnum):
    OK = "OK"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"


@dataclass(frozen=True)
class Step:
    name: str
    outcome: Outcome
    text: str
    seconds: float | None = None
    advice: str | None = None

    def lines(self) -> list[str]:
        took = f" ({self.seconds * 1000:.0f} ms)" if self.seconds is not None else ""
        first = f"  {self.outcome.value:<7} {self.name:<{NAME_WIDTH}} {self.text}{took}"
        if self.advice is None:
            return [mask_secrets(first)]
        return [mask_secrets(first), mask_secrets(f"          what to do: {self.advice}")]


@dataclass
class Report:
    """The steps of one run, printed as they complete."""

    out: Callable[[str], None] = print
    steps: list[Step] = field(default_factory=list)

    def heading(self, text: str) -> None:
        self.out(mask_secrets(text))

    def add(self, step: Step) -> Step:
        self.steps.append(step)
        for line in step.lines():
            self.out(line)
        return step

    def ok(self, name: str, text: str, seconds: float | None = None) -> Step:
        return self.add(Step(name, Outcome.OK, text, seconds))

    def failed(self, name: str, text: str, advice: str | None, seconds: float | None = None) -> Step:
        return self.add(Step(name, Outcome.FAILED, text, seconds, advice))

    def skipped(self, name: str, text: str) -> Step:
        return self.add(Step(name, Outcome.SKIPPED, text))

    def failures(self, since: int = 0) -> list[Step]:
        return [step for step in self.steps[since:] if step.outcome is Outcome.FAILED]


class Timer:
    """Seconds since it was made (a step's duration)."""

    def __init__(self) -> None:
        self._start = time.monotonic()

    @property
    def seconds(self) -> float:
        return time.monotonic() - self._start
