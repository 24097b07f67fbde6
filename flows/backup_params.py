"""Parameters shared by the backup flows: storage, credentials (Secret blocks or the worker's environment)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr

from golive.errors import ConfigError


class StorageParams(BaseModel):
    """Where backups are kept and how to reach it."""

    endpoint_url: str | None = Field(None, title="S3 endpoint", description="S3-compatible endpoint (MinIO, OSS, TOS, "
                                     "moto); empty for AWS")
    region: str | None = Field(None, title="Region", description="Empty: the AWS chain's default")
    addressing_style: Literal["auto", "path", "virtual"] = Field("auto", title="Addressing style")
    credentials_block: str | None = Field(None, title="Credentials block", description=(
        "Prefect Secret block holding {aws_access_key_id, aws_secret_access_key[, aws_session_token]}; empty: "
        "the worker's AWS chain (environment, profile, instance role)"))
    encrypt_key_block: str | None = Field(None, title="Encryption key block", description=(
        "Prefect Secret block holding the 32-byte encryption key (hex or base64); empty: no encryption"))
    encrypt_key_file: str | None = Field(None, title="Encryption key file", description=(
        "A key file on the worker (32 bytes raw, hex or base64), instead of a block"))


def storage_options(p: StorageParams):
    """``golive.backup.StorageOptions`` with the credentials loaded (inside the flow run, never stored)."""
    from flows.migrate_files import load_credentials
    from golive.backup import StorageOptions

    creds = load_credentials(p.credentials_block) or {}
    return StorageOptions(endpoint_url=p.endpoint_url, region=p.region, addressing_style=p.addressing_style,
                          access_key_id=creds.get("aws_access_key_id"),
                          secret_access_key=creds.get("aws_secret_access_key"),
                          session_token=creds.get("aws_session_token"))


def encryption_key(p: StorageParams) -> SecretStr | None:
    """The key text from the block or the file (None: no encryption)."""
    if p.encrypt_key_block and p.encrypt_key_file:
        raise ConfigError("give the encryption key as a block or as a file, not both")
    if p.encrypt_key_block:
        from flows.credentials import resolve_secret

        return SecretStr(resolve_secret(f"block:{p.encrypt_key_block}"))
    if p.encrypt_key_file:
        from golive.backup.crypto import read_key_file

        return SecretStr(read_key_file(p.encrypt_key_file).hex())
    return None
