#!/usr/bin/env python3
# Vendored copy of the team's shared bench kit (../shared/bench/gen_appdb.py): our own code, same MIT licence as
# golive. migrate_bench.py prefers the shared copy when present; keep the two identical below this header.
"""Generate a synthetic web-app SQLite database (dev-stage data) for migration benchmarks.

Usage: gen_appdb.py OUT.db [--scale 1.0] [--files DIR --file-count N]
Shapes follow the seeds: users, albums, images (file paths), tags, image_tags, audit_logs.
"""
import argparse, datetime as dt, json, os, random, sqlite3

SCHEMA = """
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT, is_active BOOLEAN NOT NULL DEFAULT 1,
  quota_bytes BIGINT NOT NULL, settings JSON, created_at DATETIME NOT NULL);
CREATE TABLE albums (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id), title TEXT NOT NULL,
  created_at DATETIME NOT NULL);
CREATE TABLE images (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id),
  album_id INTEGER REFERENCES albums(id), path TEXT NOT NULL, size_bytes INTEGER NOT NULL, width INTEGER, height INTEGER,
  sha256 TEXT NOT NULL, exif JSON, taken_at INTEGER, created_at DATETIME NOT NULL, deleted_at DATETIME);
CREATE INDEX images_user ON images(user_id);
CREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE image_tags (image_id INTEGER NOT NULL REFERENCES images(id), tag_id INTEGER NOT NULL REFERENCES tags(id),
  PRIMARY KEY (image_id, tag_id));
CREATE TABLE audit_logs (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id), action TEXT NOT NULL,
  detail TEXT, cost REAL, created_at DATETIME NOT NULL);
"""

def ts(r, base=dt.datetime(2023, 1, 1)):
    return (base + dt.timedelta(seconds=r.randrange(0, 3 * 365 * 86400))).strftime("%Y-%m-%d %H:%M:%S")

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out"); ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--files"); ap.add_argument("--file-count", type=int, default=0)
    a = ap.parse_args()
    if os.path.exists(a.out): os.remove(a.out)
    r = random.Random(42)
    n = lambda k: max(1, int(k * a.scale))
    nu, na, ni, nt, nit, nl = n(50_000), n(100_000), n(1_000_000), 5_000, n(1_500_000), n(1_000_000)
    db = sqlite3.connect(a.out); db.executescript(SCHEMA)
    words = ["会议", "相册", "travel", "family", "work", "猫", "sunset", "project", "草稿", "beach"]
    db.executemany("INSERT INTO users VALUES (?,?,?,?,?,?,?)", (
        (i, f"user{i}@example.com", f"User {i} {r.choice(words)}", r.random() < .9, r.randrange(1 << 30, 1 << 36),
         json.dumps({"lang": r.choice(["zh", "en"]), "theme": r.choice(["dark", "light"])}), ts(r)) for i in range(1, nu + 1)))
    db.executemany("INSERT INTO albums VALUES (?,?,?,?)", (
        (i, r.randint(1, nu), f"{r.choice(words)} {i}", ts(r)) for i in range(1, na + 1)))
    def images():
        for i in range(1, ni + 1):
            d = ts(r)
            yield (i, r.randint(1, nu), r.randint(1, na) if r.random() < .8 else None,
                   f"uploads/{d[:4]}/{d[5:7]}/{i:08d}.jpg", r.randrange(20_000, 8_000_000), r.choice([1920, 4032, 800]),
                   r.choice([1080, 3024, 600]), "%064x" % r.getrandbits(256),
                   json.dumps({"camera": r.choice(["iPhone 15", "Pixel 8", None]), "iso": r.choice([100, 400, 1600])}),
                   r.randrange(1_600_000_000_000, 1_730_000_000_000), d, ts(r) if r.random() < .03 else None)
    db.executemany("INSERT INTO images VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", images())
    db.executemany("INSERT INTO tags VALUES (?,?)", ((i, f"tag-{i}-{r.choice(words)}") for i in range(1, nt + 1)))
    db.executemany("INSERT OR IGNORE INTO image_tags VALUES (?,?)", ((r.randint(1, ni), r.randint(1, nt)) for _ in range(nit)))
    acts = ["login", "upload", "delete", "share", "ai.caption", "ai.tag"]
    db.executemany("INSERT INTO audit_logs VALUES (?,?,?,?,?,?)", (
        (i, r.randint(1, nu) if r.random() < .95 else None, r.choice(acts), "x" * r.randrange(20, 300),
         round(r.random() / 100, 6), ts(r)) for i in range(1, nl + 1)))
    db.commit()
    if a.files:
        for (i, p) in db.execute("SELECT id, path FROM images ORDER BY id LIMIT ?", (a.file_count,)):
            f = os.path.join(a.files, p); os.makedirs(os.path.dirname(f), exist_ok=True)
            with open(f, "wb") as fh: fh.write(r.randbytes(r.randrange(20_000, 400_000)))
    for t, in db.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name").fetchall():
        print(t, db.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0])
    db.close()

if __name__ == "__main__":
    main()
