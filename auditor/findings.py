"""What a check concludes, and what a node's findings add up to (verdict, exit code).

Reports import this module and `auditor.model`, never the checks themselves.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NewType

#: "KPA-" and three digits; stable across releases
CheckID = NewType("CheckID", str)


class Severity(StrEnum):
    """How bad it is when a check fails."""

    #: kube-proxy will not start in nftables mode, or Service traffic that works today stops
    BLOCKER = "blocker"
    #: a behaviour change that breaks some workloads or needs a config change first
    WARNING = "warning"
    #: worth showing; no action needed in the common case
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"blocker": 3, "warning": 2, "info": 1}[self.value]


class Status(StrEnum):
    """What a check found on this node."""

    PASS = "pass"
    #: the check's condition is not met, at the check's severity
    FAIL = "fail"
    #: a softer signal than a failure: review before switching
    WARN = "warn"
    INFO = "info"
    NOT_APPLICABLE = "not-applicable"
    #: the check could not be evaluated (a source is missing, or the check broke)
    ERROR = "error"
    #: waived (see the waiver); still shown
    SKIPPED = "skipped"


class Verdict(StrEnum):
    """One word per node. Precedence: blocked > incomplete > ready-with-warnings > ready."""

    READY = "ready"
    READY_WITH_WARNINGS = "ready-with-warnings"
    BLOCKED = "blocked"
    INCOMPLETE = "incomplete"


class FailOn(StrEnum):
    """The lowest severity that makes `check`/`scan` exit non-zero."""

    BLOCKER = "blocker"
    WARNING = "warning"
    NEVER = "never"


EXIT_OK, EXIT_WARNINGS, EXIT_BLOCKERS, EXIT_INCOMPLETE = 0, 1, 2, 3


@dataclass(frozen=True)
class Evidence:
    """One thing a check saw, and where: a rule line, a sysctl, a config key, a version, a metric."""

    what: str
    value: str | None = None
    #: the file or command it came from, with a line or key where there is one
    source: str = ""


@dataclass(frozen=True)
class Waiver:
    """An accepted finding: who accepted it, why, until when."""

    check: CheckID
    reason: str
    owner: str = ""
    expires: str | None = None
    scope: dict[str, str] = field(default_factory=dict)
    expired: bool = False


@dataclass(frozen=True)
class Finding:
    """The result of one check on one node."""

    id: CheckID
    severity: Severity
    status: Status
    title: str
    #: one sentence: what this node shows
    message: str
    evidence: tuple[Evidence, ...] = ()
    remediation: str = ""
    docs: str = ""
    #: structured extras a report can render (e.g. the NodePort x address table)
    details: dict[str, Any] = field(default_factory=dict)
    waiver: Waiver | None = None

    @property
    def level(self) -> Severity | None:
        """The severity this finding counts at: a failure counts at the check's severity,
        a warn as a warning; anything else does not count."""
        if self.status is Status.FAIL:
            return self.severity
        if self.status is Status.WARN:
            return Severity.WARNING if self.severity.rank >= Severity.WARNING.rank else Severity.INFO
        return None


def verdict_of(findings: Iterable[Finding], incomplete: bool = False) -> Verdict:
    """The node's verdict. A failed blocker is a definite answer even when data is missing."""
    items = list(findings)
    if any(f.level is Severity.BLOCKER for f in items):
        return Verdict.BLOCKED
    if incomplete or any(f.status is Status.ERROR for f in items):
        return Verdict.INCOMPLETE
    if any(f.level is Severity.WARNING for f in items):
        return Verdict.READY_WITH_WARNINGS
    return Verdict.READY


def exit_code_for(verdict: Verdict, findings: Iterable[Finding], fail_on: FailOn = FailOn.BLOCKER) -> int:
    """0 ready (or nothing at or above `fail_on`), 1 warnings, 2 blockers, 3 incomplete or error."""
    if verdict is Verdict.BLOCKED:
        return EXIT_OK if fail_on is FailOn.NEVER else EXIT_BLOCKERS
    if verdict is Verdict.INCOMPLETE:
        return EXIT_INCOMPLETE
    if fail_on is FailOn.WARNING and any(f.level is Severity.WARNING for f in findings):
        return EXIT_WARNINGS
    return EXIT_OK
