"""What every CLI command shares: one console, one way out, masked output.

The CLI is thin (alembic's ``command.py`` pattern): each command parses its options, calls one plain
function or flow, prints the result and maps ``GoliveError.exit_code`` to the exit status. Nothing else
lives here.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from typing import Callable, Iterator, TypeVar

import typer
from rich.console import Console

from golive.errors import GoliveError, TransientError
from golive.urls import mask

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

F = TypeVar("F", bound=Callable)

#: set by the global ``--traceback`` option
SHOW_TRACEBACK = {"on": bool(os.environ.get("GOLIVE_TRACEBACK"))}


def resolve_block(value: str) -> str:
    """A URL option given as ``block:NAME``: the URL that Prefect Secret block holds (read from the Prefect API
    this command uses); anything else as given. The URL then stays in this process (flows store it masked)."""
    from golive.urls import resolve_secret

    if value.startswith("block:"):  # read from the API: the golive server, started now if need be
        from golive import server

        note_prefect_api()
        server.ready()
    return resolve_secret(value)


def fail(message: str, code: int = 2) -> "typer.Exit":
    """Print one red line on stderr (passwords masked) and return the Exit to raise."""
    from rich.markup import escape

    err_console.print(f"[bold red]error:[/] {escape(mask(message))}", markup=True, soft_wrap=True)
    return typer.Exit(code)


def handle_errors(fn: F) -> F:
    """Turn exceptions into one readable line and an exit code (2 unless the error says otherwise)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            err_console.print("[yellow]interrupted[/] (re-run the same command to resume)")
            raise typer.Exit(130)
        except GoliveError as exc:
            if SHOW_TRACEBACK["on"]:
                raise
            message = str(exc)
            if isinstance(exc, TransientError):  # it got here after golive's retries
                message += " (still failing after golive's retries: run the same command again later)"
            raise fail(message, exc.exit_code) from None
        except Exception as exc:  # an unexpected failure: still one line, still masked
            if SHOW_TRACEBACK["on"]:
                raise
            raise fail(f"{type(exc).__name__}: {exc} (run with --traceback for details)", 2) from None

    return wrapper  # type: ignore[return-value]


@contextlib.contextmanager
def status(message: str) -> Iterator[None]:
    """Print ``message ...`` and end it with ``done`` or ``FAILED`` (alembic's ``status``)."""
    err_console.print(f"{message} ...", end=" ")
    try:
        yield
    except BaseException:
        err_console.print("[red]FAILED[/]")
        raise
    err_console.print("[green]done[/]")


def echo(message: str = "", **kwargs) -> None:
    """Print to stdout with passwords masked."""
    kwargs.setdefault("soft_wrap", True)
    console.print(mask(message), **kwargs)


def note(message: str) -> None:
    """Print a dim line to stderr (progress notes that must not pollute stdout)."""
    err_console.print(f"[dim]{mask(message)}[/]", soft_wrap=True)  # one line, whatever the width


def is_tty() -> bool:
    return sys.stderr.isatty()



#: the golive server this process reports to (found by ``golive.cli.main`` or started by ``note_prefect_api``)
PREFECT_SERVER: dict = {}
_PREFECT_NOTED = {"done": False}


def note_prefect_api() -> None:
    """Before the command's first flow run: make sure it has a Prefect API, and say once which one when the
    user did not choose it.

    With no ``PREFECT_API_URL`` (environment or profile) and no golive server running, the first command
    starts one in the background (``golive.server.auto_start``) for itself and every later command;
    ``GOLIVE_NO_SERVER=1`` keeps Prefect's temporary server instead.
    """
    from golive import server

    if _PREFECT_NOTED["done"]:
        return
    _PREFECT_NOTED["done"] = True
    state = PREFECT_SERVER.get("state")
    if state is not None:
        note(f"Prefect: reporting to the golive server left running ({state.ui}; "
             "`golive server stop` stops it)")
    elif server.server_wanted():
        state, started = server.auto_start()
        PREFECT_SERVER["state"] = state
        if started:
            note(f"Prefect: started a local Prefect server in the background for this and later commands "
                 f"(UI {state.ui}; its first start takes 10-30 s; `golive server stop` stops it, "
                 f"{server.NO_SERVER_ENV}=1 runs without one)")
        else:
            note(f"Prefect: reporting to the golive server left running ({state.ui}; "
                 "`golive server stop` stops it)")
    elif using_ephemeral():
        note(f"Starting Prefect's temporary API server ({server.NO_SERVER_ENV} is set, no PREFECT_API_URL): "
             "this takes 10-20 s on every command. Unset it to keep a local server running for later "
             "commands, or point PREFECT_API_URL at a running server.")


def using_ephemeral() -> bool:
    from golive.runtime import using_ephemeral_prefect

    return using_ephemeral_prefect()
