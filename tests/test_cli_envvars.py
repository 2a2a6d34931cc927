"""Every flag of every command has a KP_AUDIT_* environment variable (CI Jobs set them)."""

from __future__ import annotations

import typer.main

from auditor.cli import app


def test_every_option_has_an_environment_variable() -> None:
    group = typer.main.get_command(app)
    missing = []
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        for param in command.params:
            if param.param_type_name != "option" or param.name in ("help",):
                continue
            envvar = param.envvar
            if not envvar or not str(envvar).startswith("KP_AUDIT_"):
                missing.append(f"{name} {param.opts[0]}")
    assert missing == [], missing
    assert {"services", "collect", "check", "scan", "diff", "trace", "demo"} <= set(group.commands)  # type: ignore[attr-defined]


def test_environment_variable_sets_the_flag(monkeypatch, capsys) -> None:
    from tests.cli import run_cli
    from tests.helpers import reference

    monkeypatch.setenv("KP_AUDIT_SERVICES_FORMAT", "json")
    code, out, _ = run_cli(capsys, "services", "--iptables-save", str(reference("overall.iptables-save.txt")))
    assert code == 0 and out.startswith("{")
