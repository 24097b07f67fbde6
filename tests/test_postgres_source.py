"""PostgreSQL -> PostgreSQL: every type and object kept as it is (enums, domains, arrays, ranges, jsonb, identity,
generated columns, a second schema, views, materialized views, triggers, sequences, comments), in one snapshot,
validated; a changed value is named."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from conftest import _with_db
from helpers import column_types, execute, migrate, rows, scalar

FIXTURE = """
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN positive_int AS integer CHECK (VALUE > 0);
CREATE TABLE people (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL, mood mood,
  tags text[], prefs jsonb, score positive_int, born date, seen timestamptz DEFAULT now(), span int4range,
  price numeric(10,2), ratio double precision, uid uuid DEFAULT gen_random_uuid(), photo bytea,
  upper_name text GENERATED ALWAYS AS (upper(name)) STORED, note varchar(20) CHECK (note <> 'bad'));
COMMENT ON TABLE people IS 'the people';
CREATE INDEX people_lower_name ON people (lower(name));
CREATE UNIQUE INDEX people_uid ON people (uid) WHERE uid IS NOT NULL;
CREATE SCHEMA shop;
CREATE TABLE shop.orders (id serial PRIMARY KEY, person_id bigint REFERENCES public.people(id) ON DELETE CASCADE,
  total numeric(12,2) NOT NULL DEFAULT 0, placed timestamp NOT NULL DEFAULT now());
CREATE TABLE shop.order_lines (order_id int REFERENCES shop.orders(id), line int, sku text, PRIMARY KEY (order_id, line));
CREATE TABLE shop.kv (k text PRIMARY KEY, v text);
CREATE VIEW shop.big_orders AS SELECT * FROM shop.orders WHERE total > 100;
CREATE MATERIALIZED VIEW shop.order_totals AS SELECT person_id, sum(total) AS total FROM shop.orders GROUP BY person_id;
CREATE FUNCTION shop.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.placed := now(); RETURN NEW; END $$;
CREATE TRIGGER orders_touch BEFORE UPDATE ON shop.orders FOR EACH ROW EXECUTE FUNCTION shop.touch();
INSERT INTO people (name, mood, tags, prefs, score, born, span, price, ratio, photo, note)
SELECT 'p' || g, (ARRAY['sad','ok','happy'])[1 + g % 3]::mood, ARRAY['a' || g, 'b,"q"', NULL],
  jsonb_build_object('k', g, 'z', 'é'), 1 + g % 50, date '2000-01-01' + g, int4range(g, g + 10), g * 1.25, g / 3.0,
  decode(md5(g::text), 'hex'), CASE WHEN g % 5 = 0 THEN NULL ELSE 'n' || g END
FROM generate_series(1, 3000) g;
INSERT INTO shop.orders (person_id, total) SELECT 1 + g % 3000, g % 500 FROM generate_series(1, 5000) g;
INSERT INTO shop.order_lines SELECT o, l, 'sku-' || o || '-' || l FROM generate_series(1, 2000) o, generate_series(1, 3) l;
INSERT INTO shop.kv SELECT 'key' || g, repeat('v', g % 7) FROM generate_series(1, 1500) g;
REFRESH MATERIALIZED VIEW shop.order_totals;
"""


@pytest.fixture(scope="module")
def copied(pg_admin_url, prefect_api, tmp_path_factory):
    names = ["golive_ps_" + uuid.uuid4().hex[:8], "golive_pt_" + uuid.uuid4().hex[:8]]
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        for n in names:
            conn.execute(f'CREATE DATABASE "{n}"')
    src, dst = (_with_db(pg_admin_url, n) for n in names)
    with psycopg.connect(src, autocommit=True) as conn:
        conn.execute(FIXTURE)
    tmp = tmp_path_factory.mktemp("pgpg")
    report = migrate(src, dst, source_schemas=["public", "shop"], chunk_rows=700, report=str(tmp / "r.json"))
    yield report, src, dst
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        for n in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)')


def test_copy_is_complete_and_validates(copied):
    report, src, dst = copied
    assert report["ok"], report["errors"]
    assert report["validation"]["ok"], report["validation"]["failures"]
    assert {t["source"]: t["rows_written"] for t in report["tables"]} == {
        "public.people": 3000, "shop.orders": 5000, "shop.order_lines": 6000, "shop.kv": 1500}
    assert sum(t["chunks"] for t in report["tables"]) > 4  # chunked by key ranges
    assert "snapshot" in report["consistency"] and "pg_dump" in report["consistency"]
    for table in ("people", "shop.orders", "shop.order_lines", "shop.kv"):
        assert rows(src, f"SELECT * FROM {table} ORDER BY 1, 2") == rows(dst, f"SELECT * FROM {table} ORDER BY 1, 2")


def test_types_and_objects_kept_as_they_are(copied):
    report, src, dst = copied
    assert column_types(dst, "people") == column_types(src, "people")
    assert column_types(dst, "people")["mood"] == "mood" and column_types(dst, "people")["score"] == "positive_int"
    assert scalar(dst, "SELECT obj_description('people'::regclass)") == "the people"
    assert scalar(dst, "SELECT count(*) FROM pg_indexes WHERE indexname IN ('people_lower_name', 'people_uid')") == 2
    assert scalar(dst, "SELECT count(*) FROM shop.big_orders") == scalar(src, "SELECT count(*) FROM shop.big_orders")
    assert scalar(dst, "SELECT count(*) FROM shop.order_totals") == 3000  # the materialized view's data
    assert scalar(dst, "SELECT count(*) FROM pg_trigger WHERE tgname = 'orders_touch'") == 1
    # sequences and identities continue after the ids already handed out
    assert scalar(dst, "INSERT INTO people (name) VALUES ('new') RETURNING id") == 3001
    assert scalar(dst, "INSERT INTO shop.orders (person_id) VALUES (1) RETURNING id") == 5001
    with pytest.raises(psycopg.errors.CheckViolation):  # the domain's CHECK came along
        execute(dst, "INSERT INTO people (name, score) VALUES ('x', -1)")
    with pytest.raises(psycopg.errors.ForeignKeyViolation):  # a foreign key across schemas
        execute(dst, "INSERT INTO shop.orders (person_id) VALUES (999999)")
    assert scalar(dst, "SELECT upper_name FROM people WHERE id = 7") == "P7"  # generated, not copied


def test_a_changed_value_is_named(copied, tmp_path):
    report, src, dst = copied
    from flows.validate import validate_migration
    from golive.cli.validate import report_of
    from golive.validation.options import ValidateOptions
    from pydantic import SecretStr

    execute(dst, "UPDATE shop.kv SET v = 'changed' WHERE k = 'key42'")
    try:
        state = validate_migration(source=SecretStr(src), target=SecretStr(dst), return_state=True,
                                   options=ValidateOptions(output_dir=str(tmp_path / "o"), data_docs=False,
                                                           expectations_dir=str(tmp_path / "e")))
        rep = report_of(state)
        assert not rep["ok"]
        assert any(f.startswith("shop.kv: content: row k='key42', column v: target has 'changed'") for f in rep["failures"]), \
            rep["failures"]
    finally:
        execute(dst, "UPDATE shop.kv SET v = (SELECT repeat('v', 42 % 7)) WHERE k = 'key42'")


PARTITIONED = """
CREATE TABLE events (id bigint GENERATED BY DEFAULT AS IDENTITY, created date NOT NULL, kind text NOT NULL,
  payload jsonb, PRIMARY KEY (id, created)) PARTITION BY RANGE (created);
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')
  PARTITION BY RANGE (created);
CREATE TABLE events_2025_h1 PARTITION OF events_2025 FOR VALUES FROM ('2025-01-01') TO ('2025-07-01');
CREATE TABLE events_2025_h2 PARTITION OF events_2025 DEFAULT;
CREATE TABLE events_old PARTITION OF events DEFAULT;
CREATE INDEX events_kind ON events (kind);
CREATE INDEX events_2024_payload ON events_2024 USING gin (payload);
CREATE TABLE kinds (kind text PRIMARY KEY);
INSERT INTO kinds VALUES ('click'), ('view'), ('buy');
ALTER TABLE events_2024 ADD CONSTRAINT events_2024_kind_fkey FOREIGN KEY (kind) REFERENCES kinds (kind);
CREATE TABLE notes (id int PRIMARY KEY, event_id bigint NOT NULL, event_created date NOT NULL, body text,
  FOREIGN KEY (event_id, event_created) REFERENCES events (id, created));
INSERT INTO events (created, kind, payload)
SELECT date '2023-06-01' + (g % 900), (ARRAY['click', 'view', 'buy'])[1 + g % 3], jsonb_build_object('n', g)
FROM generate_series(1, 6000) g;
INSERT INTO notes SELECT g, g * 7, (SELECT created FROM events WHERE id = g * 7), 'note ' || g FROM generate_series(1, 500) g;
"""


def test_partitioned_tables_are_copied_through_their_parent(pg_admin_url, prefect_api, tmp_path):
    """A partitioned table (sub-partitions, a default partition, an index of one partition's own, a foreign key
    to it) arrives partitioned the same way, every row in the partition it was in; into MySQL it is one table."""
    names = ["golive_pp_" + uuid.uuid4().hex[:8], "golive_pq_" + uuid.uuid4().hex[:8]]
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        for n in names:
            conn.execute(f'CREATE DATABASE "{n}"')
    src, dst = (_with_db(pg_admin_url, n) for n in names)
    try:
        execute(src, PARTITIONED)
        report = migrate(src, dst, chunk_rows=1000, report=str(tmp_path / "r.json"))
        assert report["ok"] and report["rows_written"] == 6503 and report["validation"]["ok"], report
        assert not [s for s in report["skipped"] if "partition" in s["kind"]]
        per_partition = ("SELECT tableoid::regclass::text, count(*), sum(id) FROM events GROUP BY 1 ORDER BY 1")
        assert rows(dst, per_partition) == rows(src, per_partition)
        assert len(rows(dst, per_partition)) == 4
        kinds = ("SELECT c.relname, c.relkind, pg_get_expr(c.relpartbound, c.oid) FROM pg_class c "
                 "WHERE c.relname LIKE 'events%%' AND c.relkind IN ('r', 'p') ORDER BY 1")
        assert rows(dst, kinds) == rows(src, kinds)
        idx = "SELECT tablename, indexname FROM pg_indexes WHERE tablename LIKE 'events%%' ORDER BY 1, 2"
        assert rows(dst, idx) == rows(src, idx)
        assert scalar(dst, "SELECT count(*) FROM pg_constraint WHERE conname LIKE 'notes_event_id%%' "
                           "AND contype = 'f' AND convalidated") == 1
        # a partition's own foreign key, built on that partition with the other foreign keys, and validated
        own_fk = ("SELECT conrelid::regclass::text, pg_get_constraintdef(oid), convalidated FROM pg_constraint "
                  "WHERE conname = 'events_2024_kind_fkey'")
        assert rows(dst, own_fk) == rows(src, own_fk) == [("events_2024", "FOREIGN KEY (kind) REFERENCES kinds(kind)", True)]
        assert not [w for w in report["warnings"] if "foreign key of its own" in w], report["warnings"]
        # a resumed run builds the keys again: what exists (the partitions' own included) is left as it is
        import json as _json

        from golive.dialects.postgresql.target import finish_table
        from golive.model.plan import MigrationPlan
        from golive.urls import parse_url

        plan = MigrationPlan.model_validate(_json.loads(rows(dst, "SELECT plan::text FROM _golive.runs")[0][0]))
        again = finish_table(parse_url(dst), "public", next(tp for tp in plan.tables if tp.source == "events"))
        assert not again.errors and not again.skipped and not [c for c in again.created if "identity" not in c], again
        assert rows(dst, idx) == rows(src, idx)
        execute(dst, "INSERT INTO events (created, kind) VALUES ('2025-03-01', 'click')")
        assert rows(dst, "SELECT id > 6000, tableoid::regclass::text FROM events WHERE created = '2025-03-01' "
                         "AND payload IS NULL") == [(True, "events_2025_h1")]
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            for n in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)')


def test_partitioned_table_into_mysql_is_one_table(pg_admin_url, mysql_admin_url, prefect_api, tmp_path):
    from test_mysql_source import _mysql

    name = "golive_pp_" + uuid.uuid4().hex[:8]
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    src = _with_db(pg_admin_url, name)
    my = "golive_pm_" + uuid.uuid4().hex[:8]
    _mysql(mysql_admin_url, f"CREATE DATABASE `{my}`")
    try:
        execute(src, PARTITIONED)
        report = migrate(src, mysql_admin_url.rsplit("/", 1)[0] + f"/{my}", report=str(tmp_path / "r.json"))
        assert report["ok"] and report["rows_written"] == 6503 and report["validation"]["ok"], report
        assert any("partitioned table (5 partitions), copied as one table" in w for w in report["warnings"]), report
        assert _mysql(mysql_admin_url, "SELECT COUNT(*), SUM(id) FROM events", database=my)[0] == (6000, 18003000)
    finally:
        _mysql(mysql_admin_url, f"DROP DATABASE IF EXISTS `{my}`")
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
