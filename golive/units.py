"""Durations and sizes as people type them (``30d``, ``500ms``, ``10MB``) and as golive prints them."""

from __future__ import annotations

import re

from golive.errors import ConfigError

_DURATION_UNITS = {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|sec|min|s|m|h|d|w)?", re.I)

#: decimal units as golive prints them (``human_bytes``), binary ones as PostgreSQL prints them
_SIZE_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
               "t": 1000**4, "tb": 1000**4, "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.I)


def parse_duration(text: str | float | int, *, name: str = "duration") -> float:
    """Seconds in ``text``: a number of seconds, or ``500ms``, ``5s``, ``10m``/``10min``, ``2h``, ``30d``,
    ``1w``, or a sum such as ``1h30m``.

    Raises:
        ConfigError: naming ``name`` and the accepted forms.
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        if text < 0:
            raise ConfigError(f"{name} must not be negative (got {text})")
        return float(text)
    raw = str(text).strip()
    pos, total, parts = 0, 0.0, 0
    for m in _DURATION_PART.finditer(raw):
        if raw[pos:m.start()].strip():
            break
        total += float(m.group(1)) * _DURATION_UNITS[(m.group(2) or "s").lower()]
        pos, parts = m.end(), parts + 1
    if not parts or raw[pos:].strip():
        raise ConfigError(f"{name} {raw!r} is not a duration (examples: 500ms, 5s, 10m, 2h, 30d, 1w)")
    return total


def parse_size(text: str | int, *, name: str = "size") -> int:
    """Bytes in ``text``: a number of bytes, or ``64kB``, ``10MB``, ``1GB`` (powers of 1000) or ``10MiB``,
    ``1GiB`` (powers of 1024)."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text < 0:
            raise ConfigError(f"{name} must not be negative (got {text})")
        return text
    m = _SIZE.match(str(text))
    unit = m.group(2).lower() if m else None
    if not m or unit not in _SIZE_UNITS:
        raise ConfigError(f"{name} {text!r} is not a size (examples: 65536, 64kB, 10MB, 1GB, 10MiB)")
    return int(float(m.group(1)) * _SIZE_UNITS[unit])


def human_bytes(n: float) -> str:
    """``12.3 MB`` (powers of 1000, as the rest of golive prints sizes)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


def human_duration(seconds: float) -> str:
    """``850 ms``, ``12.5 s``, ``4 min 10 s``, ``3 h 20 min``, ``2 d 4 h``."""
    s = float(seconds)
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60)} s"
    if s < 86400:
        return f"{int(s // 3600)} h {int(s % 3600 // 60)} min"
    return f"{int(s // 86400)} d {int(s % 86400 // 3600)} h"


def human_count(n: float) -> str:
    """``1,234,567``."""
    return f"{int(n):,}"
