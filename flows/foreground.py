"""Running a flow from the CLI, in the foreground of the CLI's own process, and keeping its start cheap."""

from __future__ import annotations

import os
from typing import Any, Callable

from prefect import Flow
from pydantic import BaseModel, SecretBytes, SecretStr


class ModelParamsFlow(Flow):
    """A Prefect flow whose pydantic-model parameters are stored without importing FastAPI.

    Prefect stores a flow run's parameters through FastAPI's ``jsonable_encoder``, and importing FastAPI
    for that costs 0.3-0.5 s at the start of every run from the CLI. For a pydantic model the encoder
    returns ``model_dump(mode="json", by_alias=True)`` (secrets masked), and for a ``SecretStr`` the
    masked ``str()``, which is what this does; other parameters still go through Prefect's own
    serialization.
    """

    def serialize_parameters(self, parameters: dict[str, Any]) -> dict[str, Any]:
        done = {k: v.model_dump(mode="json", by_alias=True) for k, v in parameters.items()
                if isinstance(v, BaseModel)}
        done.update({k: str(v) for k, v in parameters.items() if isinstance(v, (SecretStr, SecretBytes))})
        rest = {k: v for k, v in parameters.items() if k not in done}
        return {**(super().serialize_parameters(rest) if rest else {}), **done}


def model_params_flow(**options: Any) -> Callable[[Callable[..., Any]], ModelParamsFlow]:
    """``@prefect.flow(**options)`` for flows whose parameters are pydantic models (see ``ModelParamsFlow``)."""
    return lambda fn: ModelParamsFlow(fn=fn, **options)


def run_in_foreground(flow_fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``flow_fn(*args, **kwargs)`` here and now; returns its result or raises its exception.

    When the command started the golive server (or found it starting), this waits until it answers
    (``golive.server.ready``), and the run reports to it even if Prefect was imported before the command
    chose it.

    Flow-run heartbeats are off unless PREFECT_FLOWS_HEARTBEAT_FREQUENCY is set: they let a server
    automation spot crashed runs of deployments, whereas a foreground CLI run reports its own fate, and
    Prefect 3.8 joins the heartbeat thread (which sleeps in 1 s steps) for up to a second at the end of
    every run.
    """
    from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from golive import server

    server.ready()
    updates: dict = {}
    if "PREFECT_FLOWS_HEARTBEAT_FREQUENCY" not in os.environ:
        updates[PREFECT_FLOWS_HEARTBEAT_FREQUENCY] = None
    url = os.environ.get("PREFECT_API_URL")
    if url and PREFECT_API_URL.value() != url:  # set after Prefect was imported (the server started on first use)
        updates[PREFECT_API_URL] = url
    if not updates:
        return flow_fn(*args, **kwargs)
    with temporary_settings(updates=updates):
        return flow_fn(*args, **kwargs)
