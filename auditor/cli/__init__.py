"""The `kp-audit` command line: one module per subcommand, wired here.

Exit codes are a contract: 0 ready / no unexpected finding, 1 warnings at or above
--fail-on, 2 blockers (or unexpected differences), 3 the tool could not audit (bad input,
a missing source, an internal error). Errors are one line on stderr, never a traceback
(set KP_AUDIT_DEBUG=1 to see one).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import typer

from auditor import __version__
from auditor.cli import check, collect, demo, diff, scan, services, trace
from auditor.errors import KpAuditError

EXIT_ERROR = 3

app = typer.Typer(
    name="kp-audit",
    help="Is this node safe to move kube-proxy from iptables mode to nftables mode, and what will change?",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
services.register(app)
collect.register(app)
check.register(app)
scan.register(app)
demo.register(app)
diff.register(app)
trace.register(app)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"kp-audit {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """kp-audit: audit a node before switching kube-proxy from iptables to nftables."""


def fail(message: str, code: int = EXIT_ERROR) -> None:
    """Print one error line and exit."""
    sys.stderr.write(f"kp-audit: error: {message}\n")
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point: run a subcommand, turn every failure into one line and an exit code."""
    try:
        code = app(args=list(argv) if argv is not None else None, prog_name="kp-audit", standalone_mode=False)
    except KpAuditError as exc:
        fail(str(exc), exc.exit_code)
    except typer.Abort:
        fail("interrupted", 130)
    except typer.TyperException as exc:  # usage errors: usage line + message, then 3 (not click's 2)
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:
            sys.stderr.write(f"kp-audit: error: {exc.format_message()}\n")
        sys.exit(EXIT_ERROR)
    except (BrokenPipeError, KeyboardInterrupt):
        sys.exit(130)
    except Exception as exc:  # a bug: still one line, unless asked for the traceback
        if os.environ.get("KP_AUDIT_DEBUG"):
            raise
        fail(f"internal error: {type(exc).__name__}: {exc} (set KP_AUDIT_DEBUG=1 for a traceback)")
    sys.exit(code if isinstance(code, int) else 0)
