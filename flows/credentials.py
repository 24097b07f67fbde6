"""Credentials in flow parameters: a secret is given either as itself or as the name of a Prefect block.

Deployment parameters are stored by the Prefect API as given, so a URL with a password in
``--param target=postgresql://app:pw@db/app`` would sit in the API in plain text. Instead:

* ``block:NAME`` in any URL parameter names a Prefect ``Secret`` block whose value is the URL
  (``prefect block create secret`` or ``Secret(value="postgresql://…").save("prod-db")``); the URL is
  loaded at run time, inside the flow run, and never stored as a parameter;
* a plain URL still works (given as ``SecretStr``, Prefect stores it masked for runs started from
  Python/the CLI; prefer a block for deployments).
"""

from __future__ import annotations

from golive.errors import ConfigError

BLOCK_PREFIX = "block:"


def is_block_ref(value) -> bool:
    from golive.commands import secret

    return secret(value).strip().startswith(BLOCK_PREFIX)


def resolve_secret(value) -> str:
    """The plain value of a parameter given as a string, a ``SecretStr``, or ``block:NAME`` (a Secret block)."""
    from golive.commands import secret

    raw = secret(value).strip()
    if not raw.startswith(BLOCK_PREFIX):
        return raw
    name = raw[len(BLOCK_PREFIX):].strip()
    if not name:
        raise ConfigError("'block:' names no Prefect block (write block:NAME)")
    from prefect.blocks.system import Secret

    try:
        got = Secret.load(name).get()
    except ValueError as exc:
        raise ConfigError(f"Prefect Secret block {name!r} not found ({exc}); create it with "
                          f"prefect block create secret, or Secret(value=...).save({name!r})") from None
    if not isinstance(got, str):
        raise ConfigError(f"Prefect Secret block {name!r} holds a {type(got).__name__}, not a URL string")
    return got
