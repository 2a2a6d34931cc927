"""What a check is: metadata (ID, title, severity, docs, remediation) and one `run`.

A check's docstring is its user documentation (`kp-audit explain KPA-NNN` prints it), with
the sections What it checks / Why it matters / Remediation / References. `run` looks at
the node through a `CheckContext` and returns an `Outcome`; it never raises for missing
data: it says what it could not see (NOT_APPLICABLE or WARN with the reason), and
`needs` names the sources without which it cannot be evaluated at all (ERROR).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from auditor.findings import CheckID, Evidence, Severity, Status

if TYPE_CHECKING:
    from auditor.check.context import CheckContext


@dataclass(frozen=True)
class Outcome:
    """What `Check.run` found; the runner adds the check's metadata to make a `Finding`."""

    status: Status
    message: str
    evidence: tuple[Evidence, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)
    #: replaces the check's generic remediation when this node needs something specific
    remediation: str | None = None


class Check(ABC):
    """One readiness check. Subclasses set the class attributes and implement `run`."""

    id: ClassVar[CheckID]
    title: ClassVar[str]
    severity: ClassVar[Severity]
    remediation: ClassVar[str]
    #: the upstream source: KEP, docs page, issue
    docs: ClassVar[str]
    #: snapshot sources without which this check cannot be evaluated ("iptables", "nftables")
    needs: ClassVar[tuple[str, ...]] = ()
    since: ClassVar[str] = "0.1.0"

    @abstractmethod
    def run(self, ctx: CheckContext) -> Outcome:
        """Look at the node; see the class docstring for what and why."""

    # small helpers so checks read as sentences
    def passed(self, message: str, *evidence: Evidence, **details: Any) -> Outcome:
        return Outcome(Status.PASS, message, evidence, details)

    def failed(self, message: str, *evidence: Evidence, remediation: str | None = None, **details: Any) -> Outcome:
        return Outcome(Status.FAIL, message, evidence, details, remediation)

    def warn(self, message: str, *evidence: Evidence, remediation: str | None = None, **details: Any) -> Outcome:
        return Outcome(Status.WARN, message, evidence, details, remediation)

    def info(self, message: str, *evidence: Evidence, **details: Any) -> Outcome:
        return Outcome(Status.INFO, message, evidence, details)

    def not_applicable(self, message: str, *evidence: Evidence) -> Outcome:
        return Outcome(Status.NOT_APPLICABLE, message, evidence)
