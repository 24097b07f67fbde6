"""Pure pieces, without a database: durations and sizes, thresholds from the CLI, the duplicate-index rules,
charts, formats, artifact keys, and the maintenance options."""

from __future__ import annotations

import pytest

from golive.errors import ConfigError
from golive.health import charts, render
from golive.dialects.mysql.health import redundant_indexes
from golive.dialects.postgresql.health import duplicate_indexes
from golive.maintenance.model import MaintenanceOptions
from golive.units import human_duration, parse_duration, parse_size


@pytest.mark.parametrize("text, seconds", [("30d", 30 * 86400), ("1h30m", 5400), ("500ms", 0.5), ("5", 5),
                                           ("2 s", 2), ("1w", 7 * 86400), (3, 3)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "x", "5y", "1h x", "-3"])
def test_bad_durations_name_the_option(bad):
    with pytest.raises(ConfigError, match="older-than"):
        parse_duration(bad, name="older-than")


def test_sizes_and_human_forms():
    assert parse_size("10MB") == 10_000_000 and parse_size("64kB") == 64_000 and parse_size("1GiB") == 2**30
    with pytest.raises(ConfigError):
        parse_size("ten")
    assert human_duration(0.25) == "250 ms" and human_duration(4000) == "1 h 6 min"


def test_maintenance_options_refuse_bad_durations_with_one_line():
    with pytest.raises(ConfigError, match="lock-timeout '5x' is not a duration"):
        MaintenanceOptions(lock_timeout="5x")
    assert MaintenanceOptions(purge_tables="posts, comments").purge_tables == ["posts", "comments"]


def test_thresholds_from_the_cli():
    from golive.cli.maintenance import thresholds

    got = thresholds(["unused_min_days=14", "min-bloat-bytes=1MB"], dead_ratio=0.2, min_free_bytes="8MB")
    assert got["unused_min_days"] == 14 and got["min_bloat_bytes"] == 1_000_000 and got["dead_ratio"] == 0.2
    assert got["min_free_bytes"] == 8_000_000
    with pytest.raises(ConfigError, match="did you mean dead_ratio"):
        thresholds(["dead_ration=0.1"])
    with pytest.raises(ConfigError, match="dead_ratio"):
        thresholds([], dead_ratio=3)


def _pg(name, table, key, unique=False, primary=False, am="btree", backs=False):
    n = len(key.split())
    return {"index": name, "table": table, "amname": am, "indisunique": unique, "indisprimary": primary,
            "indisvalid": True, "partial": False, "expression": False, "backs_constraint": backs, "indkey": key,
            "indclass": " ".join(["1978"] * n), "indcollation": " ".join(["0"] * n), "indoption": " ".join(["0"] * n),
            "indnkeyatts": n, "bytes": 8192, "definition": f"CREATE INDEX {name} ON {table} (...)"}


def test_duplicate_indexes_follow_pghero():
    rows = [_pg("t_pkey", "t", "1", unique=True, primary=True, backs=True), _pg("t_id", "t", "1"),
            _pg("t_a", "t", "2"), _pg("t_a_b", "t", "2 3"), _pg("t_b_a", "t", "3 2"), _pg("t_a2", "t", "2"),
            _pg("u_a", "u", "2"), _pg("t_h", "t", "2", am="hash")]
    covered = {a["index"]: b["index"] for a, b in duplicate_indexes(rows)}
    # t_id is covered by the primary key; t_a and t_a2 (identical: the later name goes) lead t_a_b;
    # the hash index is not covered by B-trees; another table's index is not a duplicate
    assert covered.keys() == {"t_id", "t_a", "t_a2"}
    assert covered["t_id"] == "t_pkey" and covered["t_a"] == "t_a_b" and covered["t_a2"] in ("t_a", "t_a_b")


def test_redundant_mysql_indexes():
    def stat(index, cols, non_unique=1):
        return [{"table_name": "t", "index_name": index, "non_unique": non_unique, "index_type": "BTREE",
                 "seq_in_index": i + 1, "column_name": c, "sub_part": None} for i, c in enumerate(cols)]

    rows = (stat("PRIMARY", ["id"], 0) + stat("k_id", ["id"]) + stat("k_a", ["a"]) + stat("k_a_b", ["a", "b"])
            + stat("u_a", ["a"], 0) + stat("u_a2", ["a"], 0))
    pairs = {(a["name"], b["name"]) for a, b in redundant_indexes(rows)}
    assert pairs == {("k_id", "PRIMARY"), ("k_a", "k_a_b"), ("u_a2", "u_a")}


def test_charts_draw_lines_points_and_bars():
    svg = charts.line_chart({"db": [("2026-01-01T00:00:00+00:00", 10_000_000), ("2026-01-02T00:00:00+00:00", 12_000_000)],
                             "empty": []}, title="Database size", chart_id="c")
    assert svg.count('<polyline class="line"') == 1 and svg.count('<circle class="point"') == 2
    assert "12.0 MB at 2026-01-02" in svg and "01-01" in svg
    one = charts.line_chart({"db": [("2026-01-01T00:00:00+00:00", 5)]}, title="x")
    assert "<polyline" not in one and one.count("<circle") == 1
    assert "no data yet" in charts.line_chart({}, title="x")
    bars = charts.bar_chart([("public.t", [("table", 100), ("indexes", 50)])], title="now")
    assert bars.count('class="segment"') == 2 and "<script" not in bars


def test_formats_and_artifact_keys():
    assert render.format_of("r.HTML") == "html" and render.format_of("x/r.md") == "markdown"
    with pytest.raises(ConfigError, match=".html, .md or .json"):
        render.format_of("report.pdf")
    from flows.maintenance import artifact_key

    assert artifact_key("db-report", "My_App.DB") == "db-report-my-app-db"
