"""A tiny, process-local progress hook: the engine reports, whoever listens (the CLI's progress bar) shows.

The engine never prints. ``emit`` costs one attribute lookup when nobody listens.
"""

from __future__ import annotations

import threading
from typing import Callable

_listeners: list[Callable[..., None]] = []
_lock = threading.Lock()


def listen(fn: Callable[..., None]) -> Callable[[], None]:
    """Register ``fn(event, **data)``; returns a function that unregisters it."""
    with _lock:
        _listeners.append(fn)

    def stop() -> None:
        with _lock:
            if fn in _listeners:
                _listeners.remove(fn)

    return stop


def emit(event: str, **data) -> None:
    for fn in list(_listeners):
        try:
            fn(event, **data)
        except Exception:  # a display problem must never break a copy
            pass
