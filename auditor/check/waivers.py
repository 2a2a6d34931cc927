"""Waivers: accepted findings, with a reason, an owner and an expiry date.

A waiver file is YAML::

    waivers:
      - check: KPA-009
        reason: "the node-local DNS cache is moved off 127.0.0.1 in change CHG-1234"
        owner: platform-team
        expires: 2027-03-31
        scope:                 # optional; every key optional; shell-style globs
          node: "worker-*"
          service: "kube-system/*"
          chain: "cali-*"

An active waiver turns a failing, warning or unevaluated finding into `skipped`: it is still
reported and counted, it no longer fails the run. A waiver is valid through its expiry
date; after that the finding stays as it was and its message says the waiver expired.

A scope narrows what a waiver covers. `node` must match the node name. `service` and
`chain` must match a Service port name (`ns/name:port`) or a chain the finding names: in
its details rows (`service`, `services`, `chain`, plus the words of a row's `rule`), else in
its evidence. When the details name several, the waiver must cover all of them: a waiver
never hides what it does not name; a partial match leaves the finding failing and says which
ones are not covered.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import yaml

from auditor.errors import InputError
from auditor.findings import CheckID, Finding, Status, Waiver

_CHECK_ID = re.compile(r"^KPA-\d{3}$")
_ENTRY_KEYS = {"check", "reason", "owner", "expires", "scope"}
_SCOPE_KEYS = ("node", "service", "chain")
#: statuses a waiver can turn into `skipped` (pass, info and not-applicable need no waiver)
WAIVABLE = frozenset({Status.FAIL, Status.WARN, Status.ERROR})
#: the words of evidence text: what a scope glob is matched against when details name nothing
_WORD = re.compile(r"[^\s\"'(),;\[\]{}<>=]+")


@dataclass(frozen=True)
class WaiverScope:
    """Shell-style globs; None: any."""

    node: str | None = None
    service: str | None = None
    chain: str | None = None

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in (("node", self.node), ("service", self.service), ("chain", self.chain)) if v}


@dataclass(frozen=True)
class WaiverRule:
    """One entry of a waiver file."""

    check: CheckID
    reason: str
    owner: str
    expires: date
    scope: WaiverScope = WaiverScope()
    #: `FILE: waiver N` (1-based), for messages
    origin: str = ""

    def active(self, today: date) -> bool:
        """Valid through the expiry date."""
        return today <= self.expires

    def attached(self, today: date) -> Waiver:
        """The waiver as a finding carries it."""
        return Waiver(
            check=self.check,
            reason=self.reason,
            owner=self.owner,
            expires=self.expires.isoformat(),
            scope=self.scope.as_dict(),
            expired=not self.active(today),
        )


@dataclass(frozen=True)
class WaiverUse:
    """How one rule fared on one node: which findings it waived, or why it did not apply."""

    rule: WaiverRule
    active: bool
    waived: tuple[CheckID, ...] = ()
    expired_on: tuple[CheckID, ...] = ()
    #: findings of the rule's check the scope did not (fully) cover, with the reason
    not_covered: tuple[str, ...] = ()


# -- loading -----------------------------------------------------------------------------------


def load_waivers(path: str | Path, known_checks: Collection[str] | None = None) -> tuple[WaiverRule, ...]:
    """Read and validate a waiver file; any problem is an `InputError` naming file and entry."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(source, f"cannot read the waiver file: {exc.strerror or exc}") from exc
    return parse_waivers(text, source, known_checks)


def parse_waivers(text: str, source: str, known_checks: Collection[str] | None = None) -> tuple[WaiverRule, ...]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise InputError(source, f"not YAML: {getattr(exc, 'problem', None) or exc}", line) from exc
    if data is None:
        return ()
    entries = data.get("waivers") if isinstance(data, Mapping) else data
    if isinstance(data, Mapping) and set(data) - {"waivers"}:
        raise InputError(source, f"unknown top-level key(s): {', '.join(sorted(map(str, set(data) - {'waivers'})))}")
    if entries is None:
        return ()
    if not isinstance(entries, list):
        raise InputError(source, "expected a list of waivers (or a mapping with a `waivers` list)")
    return tuple(_entry(item, f"{source}: waiver {i}", known_checks) for i, item in enumerate(entries, 1))


def _entry(item: Any, where: str, known_checks: Collection[str] | None) -> WaiverRule:
    if not isinstance(item, Mapping):
        raise InputError(where, "expected a mapping with check, reason, owner, expires")
    unknown = set(map(str, item)) - _ENTRY_KEYS
    if unknown:
        raise InputError(where, f"unknown key(s): {', '.join(sorted(unknown))} (allowed: {', '.join(sorted(_ENTRY_KEYS))})")
    missing = [k for k in ("check", "reason", "owner", "expires") if item.get(k) in (None, "")]
    if missing:
        raise InputError(where, f"missing {', '.join(missing)}")
    check = str(item["check"]).strip().upper()
    if not _CHECK_ID.match(check):
        raise InputError(where, f"check {item['check']!r} is not a check ID (KPA-NNN)")
    if known_checks is not None and check not in known_checks:
        raise InputError(where, f"no such check: {check} (see `kp-audit checks`)")
    return WaiverRule(
        check=CheckID(check),
        reason=_text(item["reason"], where, "reason"),
        owner=_text(item["owner"], where, "owner"),
        expires=_date(item["expires"], where),
        scope=_scope(item.get("scope"), where),
        origin=where,
    )


def _text(value: Any, where: str, key: str) -> str:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise InputError(where, f"{key} must be text")
    return str(value).strip()


def _date(value: Any, where: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError as exc:
        raise InputError(where, f"expires {value!r} is not a date (YYYY-MM-DD)") from exc


def _scope(value: Any, where: str) -> WaiverScope:
    if value is None:
        return WaiverScope()
    if not isinstance(value, Mapping):
        raise InputError(where, "scope must be a mapping with node, service and/or chain")
    unknown = set(map(str, value)) - set(_SCOPE_KEYS)
    if unknown:
        raise InputError(where, f"unknown scope key(s): {', '.join(sorted(unknown))} (allowed: node, service, chain)")
    globs: dict[str, str | None] = {}
    for key in _SCOPE_KEYS:
        raw = value.get(key)
        if raw is not None and (not isinstance(raw, str) or not raw.strip()):
            raise InputError(where, f"scope.{key} must be a non-empty pattern")
        globs[key] = raw.strip() if isinstance(raw, str) else None
    return WaiverScope(**globs)


# -- matching ----------------------------------------------------------------------------------


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _strings(item)


def _named(details: Mapping[str, Any], keys: tuple[str, ...], rule_words: bool) -> set[str]:
    """The names `details` rows give under `keys` (recursively through lists and mappings)."""
    found: set[str] = set()
    stack: list[Any] = [details]
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            for key, value in item.items():
                if key in keys:
                    found.update(_strings(value))
                elif rule_words and key == "rule" and isinstance(value, str):
                    found.update(w for w in _WORD.findall(value) if not w.startswith("-"))
                elif isinstance(value, Mapping | list | tuple):
                    stack.append(value)
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return found


def _evidence_words(finding: Finding) -> set[str]:
    words: set[str] = set()
    for e in finding.evidence:
        for text in (e.what, e.value or "", e.source):
            words.update(_WORD.findall(text))
    words.update(_WORD.findall(finding.message))
    return words


def _covers(pattern: str, finding: Finding, keys: tuple[str, ...], rule_words: bool) -> tuple[bool, str]:
    """Does `pattern` cover what the finding names under `keys`? (covered, why not)."""
    named = _named(finding.details, keys, rule_words)
    label = keys[0]
    if named:
        if rule_words:
            # a chain scope covers a row when it matches the row's chain or a word of its rule
            rows = _rows_with(finding.details, "chain")
            missing = [r for r in rows if not any(fnmatchcase(n, pattern) for n in r)]
            if not missing:
                return True, ""
            names = sorted({min(r) for r in missing})
            return False, f"{label} {pattern!r} does not cover {len(missing)} of {len(rows)} rule(s) named here ({_few(names)})"
        outside = sorted(n for n in named if not fnmatchcase(n, pattern))
        if not outside:
            return True, ""
        return False, f"{label} {pattern!r} does not cover {len(outside)} of {len(named)} {label}(s) named here ({_few(outside)})"
    if any(fnmatchcase(w, pattern) for w in _evidence_words(finding)):
        return True, ""
    return False, f"the finding does not mention a {label} matching {pattern!r}"


def _rows_with(details: Mapping[str, Any], key: str) -> list[set[str]]:
    """The rows (mappings) holding `key`, each as the set of names it gives: the key's value(s)
    and the words of its `rule`."""
    rows: list[set[str]] = []
    stack: list[Any] = [details]
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            if key in item:
                names = set(_strings(item[key]))
                if isinstance(item.get("rule"), str):
                    names.update(w for w in _WORD.findall(item["rule"]) if not w.startswith("-"))
                rows.append(names or {""})
                continue
            stack.extend(v for v in item.values() if isinstance(v, Mapping | list | tuple))
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return rows


def _few(names: Sequence[str], shown: int = 3) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def matches(rule: WaiverRule, finding: Finding, node: str) -> tuple[bool, str]:
    """Does `rule` apply to `finding` on `node`? (applies, why not)."""
    if rule.check != finding.id:
        return False, "another check"
    scope = rule.scope
    if scope.node is not None and not fnmatchcase(node, scope.node):
        return False, f"node {node!r} does not match {scope.node!r}"
    if scope.service is not None:
        ok, why = _covers(scope.service, finding, ("service", "services"), rule_words=False)
        if not ok:
            return False, why
    if scope.chain is not None:
        ok, why = _covers(scope.chain, finding, ("chain", "chains"), rule_words=True)
        if not ok:
            return False, why
    return True, ""


# -- applying ----------------------------------------------------------------------------------


def apply_waivers(
    findings: Iterable[Finding], waivers: Sequence[WaiverRule], *, node: str, today: date | None = None
) -> list[Finding]:
    """Findings with waivers applied (see the module docstring)."""
    return list(apply_waivers_with_uses(findings, waivers, node=node, today=today)[0])


def apply_waivers_with_uses(
    findings: Iterable[Finding], waivers: Sequence[WaiverRule], *, node: str, today: date | None = None
) -> tuple[tuple[Finding, ...], tuple[WaiverUse, ...]]:
    """Findings with waivers applied, and what each waiver did on this node."""
    day = today or date.today()
    by_check: dict[str, list[WaiverRule]] = {}
    for rule in waivers:
        by_check.setdefault(rule.check, []).append(rule)
    waived: dict[int, list[CheckID]] = {}
    expired: dict[int, list[CheckID]] = {}
    uncovered: dict[int, list[str]] = {}
    out: list[Finding] = []
    for finding in findings:
        candidates = by_check.get(finding.id, [])
        if finding.status not in WAIVABLE or not candidates:
            out.append(finding)
            continue
        applying: list[WaiverRule] = []
        partial: list[str] = []
        for rule in candidates:
            ok, why = matches(rule, finding, node)
            if ok:
                applying.append(rule)
                continue
            uncovered.setdefault(id(rule), []).append(f"{finding.id}: {why}")
            if " does not cover " in why:
                partial.append(f"{rule.origin}: {why}")
        active = sorted((r for r in applying if r.active(day)), key=lambda r: r.expires, reverse=True)
        if active:
            rule = active[0]
            waived.setdefault(id(rule), []).append(finding.id)
            out.append(_waive(finding, rule, day))
            continue
        lapsed = sorted(applying, key=lambda r: r.expires, reverse=True)
        if lapsed:
            rule = lapsed[0]
            expired.setdefault(id(rule), []).append(finding.id)
            out.append(_expire(finding, rule, day))
            continue
        out.append(_not_covered(finding, partial) if partial else finding)
    uses = tuple(
        WaiverUse(
            rule,
            rule.active(day),
            tuple(waived.get(id(rule), ())),
            tuple(expired.get(id(rule), ())),
            tuple(uncovered.get(id(rule), ())),
        )
        for rule in waivers
    )
    return tuple(out), uses


def _waive(finding: Finding, rule: WaiverRule, today: date) -> Finding:
    details = dict(finding.details)
    details["waived_status"] = finding.status.value
    message = f"waived until {rule.expires.isoformat()} by {rule.owner}: {rule.reason} (was {finding.status.value}: {finding.message})"
    return replace(finding, status=Status.SKIPPED, message=message, waiver=rule.attached(today), details=details)


def _expire(finding: Finding, rule: WaiverRule, today: date) -> Finding:
    message = (
        f"{finding.message} (the waiver by {rule.owner} expired on {rule.expires.isoformat()}: {rule.reason}; "
        "renew it or fix the finding)"
    )
    return replace(finding, message=message, waiver=rule.attached(today))


def _not_covered(finding: Finding, why: list[str]) -> Finding:
    details = dict(finding.details)
    details["waiver_not_applied"] = why
    message = f"{finding.message} (a waiver's scope covers only part of this finding: {'; '.join(why)})"
    return replace(finding, message=message, details=details)


__all__ = [
    "WAIVABLE",
    "WaiverRule",
    "WaiverScope",
    "WaiverUse",
    "apply_waivers",
    "apply_waivers_with_uses",
    "load_waivers",
    "matches",
    "parse_waivers",
]
