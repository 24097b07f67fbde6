#!/usr/bin/env python3
"""A/B experiments on the engine without Prefect: ``direct_migrate.py`` variants, alternated, medians.

Each variant is a string of direct_migrate.py options; every round runs all variants (order reversed
every other round) into fresh databases, with wall time, phases and peak RSS (total and anonymous).

    .venv/bin/python bench/ab_direct.py --db bench/data/app-1.db --rounds 3 \
        "" "--order interleave" "--pragma mmap_size=0"

"" is the engine as it is. Quote ratios between variants of the same run, not seconds.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from migrate_bench import (BENCH, DEFAULT_PG, BenchError, Pg, db_url, fmt, log, med, run_measured,  # noqa: E402
                           warm_cache)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("variants", nargs="+", help='direct_migrate.py options per variant; "" = as is')
    ap.add_argument("--db", required=True, help="source SQLite file")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pg-url", default=DEFAULT_PG)
    ap.add_argument("--json", help="write all runs here")
    a = ap.parse_args(argv)
    db = Path(a.db).resolve()
    if not db.is_file():
        raise BenchError(f"--db {a.db}: no such file")
    pg = Pg(a.pg_url)
    tmp = Path(tempfile.mkdtemp(prefix="golive-ab-"))
    runs: dict[str, list[dict]] = {v: [] for v in a.variants}
    try:
        warm_cache(db)
        for rnd in range(a.rounds):
            for v in (a.variants if rnd % 2 == 0 else a.variants[::-1]):
                name = pg.fresh("ab")
                out = tmp / f"{name}.json"
                cmd = [sys.executable, str(BENCH / "direct_migrate.py"), "--source", str(db),
                       "--target", db_url(pg.admin_url, name), "--out", str(out)] + shlex.split(v)
                res = run_measured(cmd, env=None, log_path=tmp / f"{name}.log", pg=pg, dbname=name)
                pg.drop(name)
                if res["rc"] != 0 or not out.is_file():
                    raise BenchError(f"variant {v!r} failed: {(res['lines'] or [(0, '', '?')])[-1][2]}")
                res["timings"] = json.loads(out.read_text())
                res.pop("lines", None)
                runs[v].append(res)
                log(f"round {rnd + 1} [{v or 'as is'}]: {res['seconds']:.1f} s, copy "
                    f"{res['timings']['phases'].get('copy', 0):.1f} s, RSS {res['peak_rss_mb']:.0f} MB "
                    f"(anon {res['peak_anon_rss_mb']:.0f}), load {res['load_1m_before']}")
    finally:
        pg.drop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    base = med([r["seconds"] for r in runs[a.variants[0]]])
    print(f"{'variant':<40} {'median s':>9} {'min':>6} {'vs first':>8} {'copy s':>7} {'plan s':>7} "
          f"{'RSS MB':>7} {'anon':>5}")
    for v, rs in runs.items():
        m = med([r["seconds"] for r in rs])
        ph = lambda k: med([r["timings"]["phases"].get(k) for r in rs])  # noqa: E731
        print(f"{(v or '(as is)'):<40} {fmt(m):>9} {fmt(min(r['seconds'] for r in rs)):>6} "
              f"{fmt(m / base if base else None, nd=2):>8} {fmt(ph('copy')):>7} {fmt(ph('plan')):>7} "
              f"{fmt(med([r['peak_rss_mb'] for r in rs]), nd=0):>7} {fmt(med([r['peak_anon_rss_mb'] for r in rs]), nd=0):>5}")
    if a.json:
        Path(a.json).write_text(json.dumps(runs, indent=2, default=str))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"ab_direct: error: {exc}", file=sys.stderr)
        sys.exit(2)
