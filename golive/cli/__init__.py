"""``golive`` command line: a thin layer over golive's plain functions and Prefect flows.

Command groups live in one module each (``db``, ``files``, ``validate``, ``demo``, ``maintenance``) and register
themselves on the apps below. Heavy imports (Prefect, Great Expectations, boto3) happen inside the
commands, so ``golive --help`` stays fast.
"""

from __future__ import annotations

import atexit
import os
import sys

import typer
from typer.core import TyperGroup

from golive import __version__
from golive.cli._common import SHOW_TRACEBACK
from golive.runtime import apply_offline_defaults, fewer_malloc_arenas

#: ``golive --help`` lists the commands by job (each registers with its ``rich_help_panel``), in this order
ORDER = ("go-live", "demo", "migrate", "validate", "expectations", "verify", "rewrite-paths", "backup", "restore",
         "backups", "release", "maintenance", "report", "server", "embedded")


class _ByJob(TyperGroup):
    def list_commands(self, ctx) -> list[str]:
        names = super().list_commands(ctx)
        return sorted(names, key=lambda n: ORDER.index(n) if n in ORDER else len(ORDER))


app = typer.Typer(
    name="golive",
    cls=_ByJob,
    help="Move an app's database and uploads from development to production, and keep them safe.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
migrate_app = typer.Typer(help="Migrate a database or an uploads folder; follow an online migration (status, cutover, abort).",
                          no_args_is_help=True)
verify_app = typer.Typer(help="Check that a migrated copy matches its source.", no_args_is_help=True)
expectations_app = typer.Typer(help="Great Expectations suites, one folder per source database "
                                    "(default golive-runs/expectations/).", no_args_is_help=True)
server_app = typer.Typer(help="A local Prefect server in the background, reused by later golive commands.",
                         no_args_is_help=True)
report_app = typer.Typer(help="Reports on what golive looks after.", no_args_is_help=True)
app.add_typer(migrate_app, name="migrate", rich_help_panel="Database")
app.add_typer(verify_app, name="verify", rich_help_panel="Files")
app.add_typer(expectations_app, name="expectations", rich_help_panel="Database")
app.add_typer(report_app, name="report", rich_help_panel="Maintenance and report")
app.add_typer(server_app, name="server", rich_help_panel="Server")


def _flags_take_no_value() -> None:
    """Show no type for a flag (typer shows ``<bool>``, as if ``--dry-run`` took a value)."""
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich
    TyperOption.display_type_rich = lambda self, ctx: None if self.is_flag else shown(self, ctx)


_flags_take_no_value()


def _version(value: bool) -> None:
    if value:
        typer.echo(f"golive {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    traceback: bool = typer.Option(False, "--traceback", help="Show the full traceback on errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    SHOW_TRACEBACK["on"] = SHOW_TRACEBACK["on"] or traceback


def _register() -> None:
    # Each module adds its commands to the apps above when imported.
    import importlib

    for name in ("db", "files", "validate", "demo", "backup", "maintenance", "server", "release", "go_live",
                 "embedded", "online", "archive"):
        try:
            importlib.import_module(f"golive.cli.{name}")
        except ModuleNotFoundError as exc:  # a group not written yet
            if exc.name != f"golive.cli.{name}":
                raise


#: the exit status the command ended with (``_skip_teardown`` needs it); unset while running
_EXIT: dict[str, object] = {}


def main() -> None:
    import logging

    # the engine logs for Prefect's handlers; where none is configured (a dry run, a lint) its warnings would reach
    # stderr through logging's last resort, repeating what the command prints once
    logging.getLogger("golive").addHandler(logging.NullHandler())
    fewer_malloc_arenas()
    apply_offline_defaults()
    _use_golive_server()
    atexit.register(_skip_teardown)  # the first exit handler registered is the last to run
    _register()
    try:
        app()
    except SystemExit as exc:
        _EXIT["code"] = 0 if exc.code is None else exc.code
        raise


def _use_golive_server() -> None:
    """With no Prefect API configured, use the server ``golive server start`` left running (if it answers)."""
    if sys.argv[1:2] == ["server"]:
        return
    from golive.server import use_recorded_server

    state = use_recorded_server()
    if state is not None:
        from golive.cli._common import PREFECT_SERVER

        PREFECT_SERVER["state"] = state


def _skip_teardown() -> None:
    """End the process right after the other exit handlers once Prefect has been loaded.

    Those handlers (Prefect's log and event flushing among them) have all run by now. What is left is
    the interpreter tearing down every module and collecting its objects, which takes 0.4-0.6 s with
    Prefect loaded and does nothing a user can see: files are closed by the OS, and every manifest
    row was committed when it was written. Nothing is skipped when the command ended with an
    exception rather than an exit status.
    """
    code = _EXIT.get("code")
    if "prefect" not in sys.modules or not isinstance(code, int):
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    main()
