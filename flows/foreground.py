"""Running a flow from the CLI, in the foreground of the CLI's own process."""

from __future__ import annotations

import os
from typing import Any, Callable


def run_in_foreground(flow_fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``flow_fn(*args, **kwargs)`` here and now; returns its result or raises its exception.

    Flow-run heartbeats are off unless PREFECT_FLOWS_HEARTBEAT_FREQUENCY is set: they let a server
    automation spot crashed runs of deployments, whereas a foreground CLI run reports its own fate, and
    Prefect 3.8 joins the heartbeat thread (which sleeps in 1 s steps) for up to a second at the end of
    every run.
    """
    if "PREFECT_FLOWS_HEARTBEAT_FREQUENCY" in os.environ:
        return flow_fn(*args, **kwargs)
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        return flow_fn(*args, **kwargs)
