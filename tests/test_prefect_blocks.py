"""Credentials as Prefect blocks, artifact keys per database and job, and forms a person can fill in.

Flows run in this process against the session's Prefect API; what the API stores (flow-run parameters,
artifacts, logs) is read back and searched for the secrets.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import uuid

import pytest
from pydantic import SecretStr

from golive.errors import ConfigError

PASSWORD = "pw-5f3a9c1e7b2d"  # fixed: parametrized test ids must be the same in every pytest-xdist worker


# ---------------------------------------------------------------- artifact keys (no API)

@pytest.mark.parametrize("url, key", [
    (f"postgresql://app:{PASSWORD}@db.internal:5432/shop?sslmode=require", "migration-tables-shop"),
    (f"mysql://root:{PASSWORD}@10.0.0.5/Shop_2", "migration-tables-shop-2"),
    ("sqlite:////srv/app/app.db", "migration-tables-app"),
    ("./data/My App.sqlite3", "migration-tables-my-app"),
    ("embedded://demo/pgdata", "migration-tables-pgdata"),
    ("s3://media/uploads/2024/", "migration-tables-media-uploads-2024"),
    ("file:///srv/files", "migration-tables-files"),
    ("block:prod-db", "migration-tables-prod-db"),
    (SecretStr(f"postgresql://u:{PASSWORD}@h/app"), "migration-tables-app"),
    ("postgresql://u:***@h/app", "migration-tables-app"),  # a masked URL gives the same key
])
def test_artifact_keys_name_the_database_and_nothing_secret(url, key):
    from flows.artifacts import artifact_key

    got = artifact_key("migration-tables", url)
    assert got == key
    assert re.fullmatch(r"[a-z0-9-]+", got)


def test_artifact_keys_schema_extras_and_odd_names():
    from flows.artifacts import artifact_key

    assert artifact_key("validation-summary", "postgresql://h/app", schema="public") == "validation-summary-app"
    assert artifact_key("validation-summary", "postgresql://h/app", schema="Billing") == "validation-summary-app-billing"
    assert artifact_key("rewrite-paths", "sqlite:///a.db", "images", "path") == "rewrite-paths-a-images-path"
    a, b = artifact_key("x", "postgresql://h/Übung"), artifact_key("x", "postgresql://h/Ubung")
    assert a != b and re.fullmatch(r"[a-z0-9-]+", a)  # a name that lost characters keeps a digest
    long = artifact_key("files-upload", "s3://" + "b" * 63 + "/" + "p" * 200)
    assert len(long) <= 80 and re.fullmatch(r"[a-z0-9-]+", long)
    assert "app" not in artifact_key("x", f"postgresql://app:{PASSWORD}@h/shop")  # no user, no password


# ---------------------------------------------------------------- the forms

def test_form_models_have_a_title_and_a_description_on_every_field():
    from flows.migrate_files import MigrateFilesParams
    from flows.rewrite_paths import RewritePathsParams
    from golive.config import MigrateOptions
    from golive.validation.options import ValidateOptions

    missing = [f"{m.__name__}.{name}" for m in (MigrateOptions, ValidateOptions, MigrateFilesParams, RewritePathsParams)
               for name, f in m.model_fields.items() if not (f.title and f.description)]
    assert not missing


def test_every_deployed_flow_has_a_form_with_descriptions_titles_and_defaults():
    import yaml
    from prefect.flows import load_flow_from_entrypoint
    from prefect.utilities.callables import parameter_schema

    from conftest import ROOT

    deployments = yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]
    missing: list[str] = []
    for d in deployments:
        path, _, fn = d["entrypoint"].partition(":")
        if not (ROOT / path).exists():  # a deployment of a flow another branch adds
            continue
        flow = load_flow_from_entrypoint(str(ROOT / d["entrypoint"]))
        schema = parameter_schema(flow).model_dump()
        for name, prop in schema["properties"].items():
            if not prop.get("description"):
                missing.append(f"{d['name']}.{name}: no description")
            if prop.get("format") == "password" and "block:" not in (prop.get("description") or ""):
                missing.append(f"{d['name']}.{name}: a secret URL whose description does not offer block:NAME")
    assert not missing, "\n".join(missing)
    files = parameter_schema(load_flow_from_entrypoint(str(ROOT / "flows/migrate_files.py:migrate_files")))
    fields = files.model_dump()["definitions"]["MigrateFilesParams"]["properties"]
    assert fields["workers"]["default"] == 8 and fields["bucket_block"]["title"] == "Bucket block"
    assert fields["addressing_style"]["enum"] == ["auto", "path", "virtual"]


# ---------------------------------------------------------------- URL parameters as Secret blocks

def _api(coro_fn):
    from prefect.client.orchestration import get_client

    async def run():
        async with get_client() as client:
            return await coro_fn(client)

    return asyncio.run(run())


def everything_stored_for(flow_run_id) -> str:
    """The flow run, its task runs, artifacts and logs as the API returns them, as one JSON text."""
    from prefect.client.schemas.filters import (ArtifactFilter, ArtifactFilterFlowRunId, FlowRunFilter,
                                                FlowRunFilterId, LogFilter, LogFilterFlowRunId)

    async def read(client):
        run = await client.read_flow_run(flow_run_id)
        tasks = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
        arts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
        logs = await client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
        return json.dumps([run.model_dump(mode="json"), [t.model_dump(mode="json") for t in tasks],
                           [a.model_dump(mode="json") for a in arts], [lg.model_dump(mode="json") for lg in logs]])

    return _api(read)


def artifacts_of(flow_run_id) -> dict[str, dict]:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    async def read(client):
        return await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))

    return {a.key: a.model_dump(mode="json") for a in _api(read) if a.key}


def test_resolve_url_reads_a_secret_block(prefect_api):
    from prefect.blocks.system import Secret

    from flows.credentials import resolve_url

    name = "gpf-url-" + uuid.uuid4().hex[:8]
    Secret(value=f"postgresql://app:{PASSWORD}@db/app").save(name)
    got = resolve_url(f"block:{name}")
    assert isinstance(got, SecretStr) and got.get_secret_value().endswith("@db/app") and PASSWORD not in str(got)
    assert resolve_url(SecretStr("sqlite:///a.db")).get_secret_value() == "sqlite:///a.db"
    with pytest.raises(ConfigError, match="not found"):
        resolve_url("block:gpf-no-such-block")
    with pytest.raises(ConfigError, match="names no Prefect block"):
        resolve_url("block: ")


@pytest.fixture
def gpf_pg(pg_admin_url):
    """A database gpf_<hex> owned by a role gpf_<hex> with a password; yields the URL with the password."""
    import psycopg

    from conftest import _with_db

    name = "gpf_" + uuid.uuid4().hex[:10]
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{PASSWORD}'")
        conn.execute(f'CREATE DATABASE "{name}" OWNER {name}')
    admin = _with_db(pg_admin_url, name)
    url = re.sub(r"://[^@/]*@", f"://{name}:{PASSWORD}@", admin) if "@" in admin else admin
    yield url, admin
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f"DROP ROLE IF EXISTS {name}")


def test_rewrite_paths_with_the_database_in_a_secret_block(prefect_api, gpf_pg, tmp_path):
    """The flow run's parameters, task runs, artifacts and logs hold the block's name, never the URL."""
    import psycopg
    from prefect.blocks.system import Secret

    from flows.rewrite_paths import RewritePathsParams, rewrite_paths
    from golive.files import sync

    url, admin = gpf_pg
    src = tmp_path / "uploads"
    (src / "2024").mkdir(parents=True)
    (src / "2024" / "a.jpg").write_bytes(b"x" * 10)
    up = sync.upload_folder(src, (tmp_path / "bucket").as_uri(), state_dir=tmp_path / "state")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE images (id int PRIMARY KEY, path text)")
        conn.execute("INSERT INTO images VALUES (1, 'uploads/2024/a.jpg'), (2, 'uploads/2024/gone.jpg')")
    name = "gpf-db-" + uuid.uuid4().hex[:8]
    Secret(value=url).save(name)
    state = rewrite_paths(RewritePathsParams(db=SecretStr(f"block:{name}"), table="images", column="path",
                                             to="https://cdn.example.com/{path}", strip_prefix="uploads/",
                                             manifest=up.manifest), return_state=True)
    report = state.result()
    assert report.rewritten == 1 and report.missing == 1
    with psycopg.connect(admin) as conn:
        assert conn.execute("SELECT path FROM images WHERE id = 1").fetchone()[0] == "https://cdn.example.com/2024/a.jpg"
    stored = everything_stored_for(state.state_details.flow_run_id)
    assert PASSWORD not in stored and url not in stored
    dbname = url.rsplit("/", 1)[1]
    assert f"rewrite-paths-{dbname.replace('_', '-')}-images-path" in artifacts_of(state.state_details.flow_run_id)


def test_rewrite_paths_cli_takes_block_name(golive, gpf_pg, tmp_path):
    """``golive rewrite-paths --db block:NAME``: the URL (with its password) from the Secret block, never a SQLite
    file named "block:NAME"."""
    import psycopg
    from prefect.blocks.system import Secret

    from golive.files import sync

    url, admin = gpf_pg
    src = tmp_path / "uploads"
    (src / "2024").mkdir(parents=True)
    (src / "2024" / "a.jpg").write_bytes(b"x" * 10)
    up = sync.upload_folder(src, (tmp_path / "bucket").as_uri(), state_dir=tmp_path / "state")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE images (id int PRIMARY KEY, path text)")
        conn.execute("INSERT INTO images VALUES (1, 'uploads/2024/a.jpg')")
    name = "gpf-rw-" + uuid.uuid4().hex[:8]
    Secret(value=url).save(name)
    args = ("rewrite-paths", "--db", f"block:{name}", "--table", "images", "--column", "path", "--to",
            "https://cdn.example.com/{path}", "--strip-prefix", "uploads/", "--manifest", str(up.manifest))
    res = golive(*args, "--dry-run")
    assert res.code == 0 and "to be rewritten" in res.out, res
    res = golive(*args)
    assert res.code == 0, res
    assert PASSWORD not in res.all
    with psycopg.connect(admin) as conn:
        assert conn.execute("SELECT path FROM images").fetchone()[0] == "https://cdn.example.com/2024/a.jpg"


def test_expectations_generate_takes_block_names(golive, gpf_pg, tmp_path):
    """``golive expectations generate --source block:A --target block:B``: both URLs from Secret blocks."""
    import sqlite3

    from prefect.blocks.system import Secret

    from helpers import migrate

    url, _ = gpf_pg
    app = tmp_path / "app.db"
    with sqlite3.connect(app) as db:
        db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE)")
        db.execute("INSERT INTO users VALUES (1, 'a@example.com'), (2, 'b@example.com')")
    assert migrate(app, url)["ok"]
    tag = uuid.uuid4().hex[:8]
    Secret(value=f"sqlite:///{app}").save(f"gpf-src-{tag}")
    Secret(value=url).save(f"gpf-dst-{tag}")
    res = golive("expectations", "generate", "--source", f"block:gpf-src-{tag}", "--target", f"block:gpf-dst-{tag}",
                 "--dir", str(tmp_path / "suites"))
    assert res.code == 0, res
    assert PASSWORD not in res.all
    assert list((tmp_path / "suites").rglob("*.json")), res


# ---------------------------------------------------------------- buckets as prefect-aws blocks

@pytest.fixture
def uploads(tmp_path):
    root = tmp_path / "uploads"
    for i in range(4):
        (root / f"d{i % 2}").mkdir(parents=True, exist_ok=True)
        (root / f"d{i % 2}" / f"f{i}.jpg").write_bytes(os.urandom(500 + i))
    return root


def _params(uploads, tmp_path, **kw):
    from flows.migrate_files import MigrateFilesParams

    return MigrateFilesParams(source=str(uploads), workers=2, state_dir=str(tmp_path / "state"), **kw)


def test_s3_bucket_block_brings_bucket_folder_endpoint_and_keys(prefect_api, uploads, bucket, proxy, tmp_path, s3):
    from prefect_aws import AwsClientParameters, AwsCredentials, S3Bucket

    from flows.migrate_files import migrate_files
    from flows.verify_files import verify_files

    tag = uuid.uuid4().hex[:8]
    creds = AwsCredentials(aws_access_key_id="AKIABLOCK", aws_secret_access_key=f"s3cret-{PASSWORD}",
                           region_name="us-east-1",
                           aws_client_parameters=AwsClientParameters(endpoint_url=proxy.url,
                                                                     config={"s3": {"addressing_style": "path"}}))
    creds.save(f"gpf-creds-{tag}")
    S3Bucket(bucket_name=bucket, bucket_folder="media/", credentials=creds).save(f"gpf-bucket-{tag}")
    state = migrate_files(_params(uploads, tmp_path, bucket_block=f"gpf-bucket-{tag}"), return_state=True)
    report = state.result()
    assert report.ok and report.uploaded == 4 and report.dest == f"s3://{bucket}/media"
    assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])[0] == "media/d0/f0.jpg"
    assert {s.akid for s in proxy.seen} == {"AKIABLOCK"}
    stored = everything_stored_for(state.state_details.flow_run_id)
    assert PASSWORD not in stored and "AKIABLOCK" not in stored and f"gpf-bucket-{tag}" in stored
    assert f"files-upload-{bucket}-media" in artifacts_of(state.state_details.flow_run_id)
    assert verify_files(_params(uploads, tmp_path, bucket_block=f"gpf-bucket-{tag}")).matched == 4


def test_credentials_block_may_be_aws_credentials_minio_or_secret(prefect_api, uploads, bucket, proxy, tmp_path):
    from prefect.blocks.system import Secret
    from prefect_aws import AwsCredentials, MinIOCredentials

    from flows.migrate_files import migrate_files

    tag = uuid.uuid4().hex[:8]
    AwsCredentials(aws_access_key_id="AKIAAWS", aws_secret_access_key="x1").save(f"gpf-a-{tag}")
    MinIOCredentials(minio_root_user="minioadmin", minio_root_password="x2").save(f"gpf-m-{tag}")
    Secret(value={"aws_access_key_id": "AKIASECRET", "aws_secret_access_key": "x3"}).save(f"gpf-s-{tag}")
    for name, akid in ((f"gpf-a-{tag}", "AKIAAWS"), (f"minio-credentials/gpf-m-{tag}", "minioadmin"),
                       (f"secret/gpf-s-{tag}", "AKIASECRET")):
        proxy.seen.clear()
        dest = f"s3://{bucket}/{akid.lower()}"
        assert migrate_files(_params(uploads, tmp_path, dest=dest, endpoint_url=proxy.url,
                                     credentials_block=name)).ok
        assert {s.akid for s in proxy.seen} == {akid}, name
    with pytest.raises(ConfigError, match="block 'gpf-none' not found .looked for aws-credentials"):
        migrate_files(_params(uploads, tmp_path, dest=f"s3://{bucket}", credentials_block="gpf-none"))
    with pytest.raises(ConfigError, match="unknown block type 'azure'"):
        migrate_files(_params(uploads, tmp_path, dest=f"s3://{bucket}", credentials_block="azure/x"))
    with pytest.raises(ConfigError, match="not both"):
        migrate_files(_params(uploads, tmp_path, dest=f"s3://{bucket}", bucket_block=f"gpf-a-{tag}"))
    with pytest.raises(ConfigError, match="s3-bucket/gpf-none not found"):
        migrate_files(_params(uploads, tmp_path, bucket_block="gpf-none"))


def test_cli_migrate_and_validate_take_block_names(golive, pg_url, tmp_path):
    """`golive migrate db` and `golive validate` read a `block:NAME` URL from the Prefect API they use; the URL
    itself is never printed; an unknown block is one line, exit 2."""
    from prefect.blocks.system import Secret

    from golive.sample import build

    db = tmp_path / "app.db"
    build(db, users=5, bad_rows=False)
    app = str(db)
    name = "gpf-cli-" + uuid.uuid4().hex[:8]
    Secret(value=pg_url).save(name)
    res = golive("migrate", "db", "--source", app, "--target", f"block:{name}", "--report", tmp_path / "r.json")
    assert res.code == 0, res
    assert json.loads((tmp_path / "r.json").read_text())["rows_rejected"] == 0
    res = golive("validate", "--source", app, "--target", f"block:{name}")
    assert res.code == 0, res
    res = golive("migrate", "db", "--source", app, "--target", "block:gpf-no-such-block")
    lines = [x for x in res.err.strip().splitlines() if x.strip()]
    assert res.code == 2 and len(lines) == 1 and "gpf-no-such-block" in lines[0] and "not found" in lines[0], res
