"""Secrets given without putting them on a command line or in a flow-run parameter: ``block:NAME``.

Any URL (or key) golive takes may be written ``block:NAME``: the value of the Prefect ``Secret`` block NAME, read
from the Prefect API in use (``PREFECT_API_URL`` or the local server). The CLI and the flows both resolve through
``resolve_secret`` here, at their entry point; what they pass on is the value, as a ``SecretStr`` or a parsed
``DatabaseURL``. Reading a block is the one place ``golive/`` talks to Prefect, and it imports Prefect only then.
"""

from __future__ import annotations

from golive.errors import ConfigError
from golive.urls import BLOCK_PREFIX, secret


def is_block_ref(value) -> bool:
    return secret(value).strip().startswith(BLOCK_PREFIX)


def resolve_secret(value) -> str:
    """The plain value of a parameter given as a string, a ``SecretStr``, or ``block:NAME`` (a Secret block)."""
    raw = secret(value).strip()
    if not raw.startswith(BLOCK_PREFIX):
        return raw
    name = raw[len(BLOCK_PREFIX):].strip()
    if not name:
        raise ConfigError("'block:' names no Prefect block (write block:NAME)")
    try:
        got = _load_secret_block(name)
    except ValueError as exc:
        raise ConfigError(f"Prefect Secret block {name!r} not found ({exc}); create it with "
                          f"prefect block create secret, or Secret(value=...).save({name!r})") from None
    if not isinstance(got, str):
        raise ConfigError(f"Prefect Secret block {name!r} holds a {type(got).__name__}, not a URL string")
    return got


def _load_secret_block(name: str):
    """The value of Prefect ``Secret`` block ``name`` (raises ``ValueError`` when there is none)."""
    from prefect.blocks.system import Secret  # only when a block is named: plain URLs never import Prefect

    return Secret.load(name).get()
