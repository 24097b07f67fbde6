"""Credentials in flow parameters: a secret is given either as itself or as the name of a Prefect block.

Deployment parameters are stored by the Prefect API as given, so a URL with a password in
``--param target=postgresql://app:pw@db/app`` would sit in the API in plain text. Instead:

* ``block:NAME`` in any URL parameter names a Prefect ``Secret`` block whose value is the URL
  (``prefect block create secret`` or ``Secret(value="postgresql://…").save("prod-db")``); the URL is
  loaded at run time, inside the flow run, and never stored as a parameter;
* a plain URL still works (given as ``SecretStr``, Prefect stores it masked for runs started from
  Python/the CLI; prefer a block for deployments).

Flows call ``resolve_url`` on each URL parameter as their first step and pass the result (a ``SecretStr``)
to their tasks. For buckets, ``s3_settings`` reads prefect-aws blocks (``S3Bucket``, ``AwsCredentials``,
``MinIOCredentials``) or a ``Secret`` block with the keys, named in the ``bucket_block`` /
``credentials_block`` parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from golive.urls import BLOCK_PREFIX, is_block_ref, resolve_secret  # noqa: F401 (re-exported)
from golive.errors import ConfigError
from golive.urls import secret

def resolve_url(value, name: str = "url"):
    """``resolve_secret`` as a ``SecretStr``, for the start of a flow: the URL a ``block:NAME`` holds, or the
    URL given. Only the reference is stored with the flow run; the URL itself stays in this process and
    prints as ``**********``.

    A plain URL with a password in a run started from a deployment was stored by the Prefect API as
    given: that gets a warning (the run goes on) naming the parameter and the fix.
    """
    from pydantic import SecretStr

    plain = resolve_secret(value)
    if not is_block_ref(value) and _has_password(plain) and _in_deployment_run():
        from prefect import get_run_logger

        get_run_logger().warning(
            "parameter %r carries a password, which the Prefect API stores with the flow run as given: "
            "put the URL in a Secret block and pass block:NAME instead", name)
    return SecretStr(plain)


def _has_password(url: str) -> bool:
    from golive.urls import mask

    return mask(url) != url


def _in_deployment_run() -> bool:
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    return bool(ctx and ctx.flow_run and ctx.flow_run.deployment_id)


# ---------------------------------------------------------------- S3: prefect-aws blocks

#: block types a ``credentials_block`` name may be, tried in this order; ``slug/NAME`` picks one
CREDENTIAL_BLOCK_TYPES = ("aws-credentials", "minio-credentials", "secret")


@dataclass
class S3Settings:
    """What blocks say about a bucket: the destination, how to reach it and the keys (secrets as ``SecretStr``
    inside ``credentials``' values once ``sync.make_job`` has them)."""

    dest: str | None = None
    endpoint_url: str | None = None
    region: str | None = None
    addressing_style: str | None = None
    credentials: dict | None = None
    source: list[str] = field(default_factory=list)  # which blocks were read, for the log


def load_credentials(block: str | None) -> dict | None:
    """AWS keys from a block named ``block``: a prefect-aws ``AwsCredentials`` or ``MinIOCredentials``
    block, or a ``Secret`` block holding ``{aws_access_key_id, aws_secret_access_key[, aws_session_token]}``;
    ``aws-credentials/NAME``, ``minio-credentials/NAME`` or ``secret/NAME`` picks the type. None: the AWS chain."""
    if not block:
        return None
    return s3_settings(credentials_block=block).credentials


def s3_settings(credentials_block: str | None = None, bucket_block: str | None = None) -> S3Settings:
    """Read the named blocks (``bucket_block``: a prefect-aws ``S3Bucket``, whose own credentials apply
    unless ``credentials_block`` is given too).

    Raises:
        ConfigError: a block that does not exist, or holds something golive cannot use, named with the fix.
    """
    out = S3Settings()
    if bucket_block:
        from prefect_aws import S3Bucket

        bucket = _load(S3Bucket, bucket_block, "s3-bucket")
        folder = (bucket.bucket_folder or "").strip("/")
        out.dest = f"s3://{bucket.bucket_name}" + (f"/{folder}" if folder else "")
        out.source.append(f"s3-bucket/{bucket_block}")
        if not credentials_block:
            _apply_credentials(out, bucket.credentials, f"s3-bucket/{bucket_block}")
    if credentials_block:
        kind, _, name = credentials_block.rpartition("/")
        kinds = (kind,) if kind else CREDENTIAL_BLOCK_TYPES
        if kind and kind not in CREDENTIAL_BLOCK_TYPES:
            raise ConfigError(f"credentials block {credentials_block!r}: unknown block type {kind!r} "
                              f"(one of {', '.join(CREDENTIAL_BLOCK_TYPES)})")
        for slug in kinds:
            found = _try_load(slug, name)
            if found is not None:
                _apply_credentials(out, found, f"{slug}/{name}")
                out.source.append(f"{slug}/{name}")
                break
        else:
            raise ConfigError(f"Prefect block {name!r} not found (looked for {' and '.join(kinds)} blocks of that "
                              "name): create one in the UI (Blocks), with prefect block create, or "
                              "AwsCredentials(...).save(name)")
    return out


def _block_class(slug: str):
    if slug == "secret":
        from prefect.blocks.system import Secret

        return Secret
    from prefect_aws import AwsCredentials, MinIOCredentials

    return {"aws-credentials": AwsCredentials, "minio-credentials": MinIOCredentials}[slug]


def _try_load(slug: str, name: str):
    try:
        return _block_class(slug).load(name)
    except ValueError:  # Prefect: "Unable to find block document named ..."
        return None


def _load(cls, name: str, slug: str):
    try:
        return cls.load(name)
    except ValueError:
        raise ConfigError(f"Prefect block {slug}/{name} not found: create it in the UI (Blocks) or with "
                          "prefect block create") from None


def _apply_credentials(out: S3Settings, block, label: str) -> None:
    """Keys, region and endpoint from an AwsCredentials / MinIOCredentials / Secret block."""
    from prefect.blocks.system import Secret

    if isinstance(block, Secret):
        out.credentials = _secret_keys(block.get(), label)
        return
    keys = {}
    if hasattr(block, "minio_root_user"):
        keys = {"aws_access_key_id": block.minio_root_user,
                "aws_secret_access_key": secret(block.minio_root_password)}
    else:
        for unsupported in ("profile_name", "assume_role_arn"):
            if getattr(block, unsupported, None):
                raise ConfigError(f"block {label}: {unsupported} is not supported by golive; give keys in the "
                                  "block, or leave the block out and set AWS_PROFILE in the worker's environment")
        keys = {k: secret(getattr(block, k, None)) for k in
                ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")}
    keys = {k: v for k, v in keys.items() if v}
    if keys and not (keys.get("aws_access_key_id") and keys.get("aws_secret_access_key")):
        raise ConfigError(f"block {label} has only one of aws_access_key_id and aws_secret_access_key")
    out.credentials = keys or None  # an empty AwsCredentials block: the AWS chain
    out.region = getattr(block, "region_name", None) or out.region
    params = getattr(block, "aws_client_parameters", None)
    if params is not None:
        out.endpoint_url = params.endpoint_url or out.endpoint_url
        style = ((params.config or {}).get("s3") or {}).get("addressing_style")
        out.addressing_style = style or out.addressing_style


def _secret_keys(value, label: str) -> dict:
    import json

    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ConfigError(f"Secret block {label} must hold a JSON object with aws_access_key_id and "
                              "aws_secret_access_key") from None
    if not isinstance(value, dict) or not value.get("aws_access_key_id") or not value.get("aws_secret_access_key"):
        raise ConfigError(f"Secret block {label} must hold aws_access_key_id and aws_secret_access_key")
    return value


