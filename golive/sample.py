"""A sample app database (SQLite) and uploads folder, shaped like what a web app accumulates in development.

Used by ``golive demo`` and the tests. Deterministic for a given seed. It contains what real
development databases contain: mixed date formats, booleans stored three ways, JSON, epoch
milliseconds (as Prisma writes them), Unicode, quotes and newlines, a self-reference, a composite key,
orphaned rows — and two values no PostgreSQL column can hold, to show the reject report.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
from pathlib import Path

SCHEMA = """
CREATE TABLE users (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  email VARCHAR(120) NOT NULL UNIQUE,
  name TEXT,
  is_active BOOLEAN NOT NULL DEFAULT 1,
  is_admin BOOLEAN NOT NULL DEFAULT 'f',
  settings JSON,
  invited_by INTEGER REFERENCES users(id) ON DELETE SET NULL,
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE albums (
  id INTEGER PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  title NVARCHAR(200) NOT NULL,
  created_at DATETIME NOT NULL DEFAULT (datetime('now'))
);
CREATE TABLE images (
  id INTEGER PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users(id),
  album_id INTEGER REFERENCES albums(id) ON DELETE SET NULL,
  path TEXT NOT NULL,
  size_bytes INTEGER NOT NULL,
  width int(11), height int(11),
  sha256 CHAR(64) NOT NULL,
  exif JSON,
  "takenAt" DATETIME,
  created_at DATETIME NOT NULL,
  deleted_at DATETIME
);
CREATE INDEX images_user ON images(user_id);
CREATE UNIQUE INDEX images_path ON images(path);
CREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE image_tags (
  image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
  tag_id INTEGER NOT NULL REFERENCES tags(id),
  PRIMARY KEY (image_id, tag_id)
);
CREATE TABLE audit_logs (
  id INTEGER PRIMARY KEY,
  user_id INTEGER REFERENCES users(id),
  action TEXT NOT NULL,
  detail TEXT,
  cost REAL,
  created_at DATETIME NOT NULL
);
CREATE VIEW active_users AS SELECT id, email, name FROM users WHERE is_active = 1;
CREATE TRIGGER audit_user_delete AFTER DELETE ON users BEGIN
  INSERT INTO audit_logs (user_id, action, created_at) VALUES (OLD.id, 'user.delete', datetime('now'));
END;
"""

WORDS = ["会议", "相册", "travel", "family", "work", "猫", "sunset", "project", "草稿", "beach", "Zoë", "O'Brien",
         'the "best"', "a,b", "line\nbreak", "🙂"]


def _ts(r: random.Random, style: int) -> str | int:
    sec = 1_672_531_200 + r.randrange(0, 3 * 365 * 86400)  # 2023..2025
    import datetime as dt

    d = dt.datetime.fromtimestamp(sec, dt.timezone.utc)
    if style == 0:
        return d.strftime("%Y-%m-%d %H:%M:%S")
    if style == 1:
        return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{r.randrange(1000):03d}Z"
    if style == 2:
        return d.astimezone(dt.timezone(dt.timedelta(hours=8))).isoformat()
    return sec * 1000 + r.randrange(1000)  # epoch milliseconds (Prisma)


def build(path: str | os.PathLike, *, users: int = 500, images_per_user: int = 8, uploads: str | os.PathLike | None = None,
          seed: int = 7, bad_rows: bool = True) -> dict[str, int]:
    """Create the sample database at ``path`` (replaced if it exists); optionally write the uploads.

    Returns row counts per table.
    """
    r = random.Random(seed)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.exists():
        p.unlink()
    db = sqlite3.connect(p)
    db.executescript(SCHEMA)
    for i in range(1, users + 1):
        active = r.choice([1, 1, 1, 0, "t", "true"]) if i % 7 else r.choice(["f", "false", 0])
        db.execute("INSERT INTO users VALUES (?,?,?,?,?,?,?,?)", (
            i, f"User{i}@Example.com", f"{r.choice(WORDS)} {i}", active, "t" if i == 1 else "f",
            json.dumps({"lang": r.choice(["zh", "en"]), "theme": r.choice(["dark", "light"])}, ensure_ascii=False),
            r.randint(1, i - 1) if i > 1 and r.random() < .3 else None, _ts(r, i % 3)))
    album = 0
    for u in range(1, users + 1):
        for _ in range(r.randint(0, 3)):
            album += 1
            db.execute("INSERT INTO albums VALUES (?,?,?,?)", (album, u, f"{r.choice(WORDS)} {album}", _ts(r, 0)))
    img = 0
    for u in range(1, users + 1):
        for _ in range(r.randint(0, images_per_user * 2)):
            img += 1
            created = _ts(r, 0)
            exif = {"camera": r.choice(["iPhone 15", "Pixel 8", None]), "iso": r.choice([100, 400, 1600])}
            db.execute("INSERT INTO images VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", (
                img, u, r.randint(1, album) if album and r.random() < .8 else None,
                f"uploads/{created[:4]}/{created[5:7]}/{img:06d}.jpg", r.randrange(20_000, 400_000),
                r.choice([1920, 4032, 800]), r.choice([1080, 3024, 600]), "%064x" % r.getrandbits(256),
                json.dumps(exif), _ts(r, 3), created, _ts(r, 1) if r.random() < .03 else None))
    tags = 40
    for t in range(1, tags + 1):
        db.execute("INSERT INTO tags VALUES (?,?)", (t, f"tag-{t}-{r.choice(WORDS)}"))
    for _ in range(img * 2):
        db.execute("INSERT OR IGNORE INTO image_tags VALUES (?,?)", (r.randint(1, img), r.randint(1, tags)))
    acts = ["login", "upload", "delete", "share", "ai.caption"]
    for i in range(1, users * 6 + 1):
        db.execute("INSERT INTO audit_logs VALUES (?,?,?,?,?,?)", (
            i, r.randint(1, users) if r.random() < .95 else None, r.choice(acts), r.choice(WORDS) * r.randint(1, 5),
            round(r.random() / 100, 6), _ts(r, r.randrange(3))))
    if bad_rows:
        # an orphan left behind by a delete without foreign keys enforced
        db.execute("INSERT INTO audit_logs VALUES (?,?,?,?,?,?)", (users * 6 + 1, users + 999, "login", None, 0.0,
                                                                   "2024-05-01 10:00:00"))
        # two values PostgreSQL cannot hold in these columns: golive rejects them, with the reason
        db.execute("UPDATE images SET exif = '{\"camera\": \"Nikon\", iso: 200' WHERE id = 3")
        db.execute("UPDATE audit_logs SET created_at = 'yesterday' WHERE id = 5")
    db.commit()
    counts = {t: db.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
              for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")}
    if uploads is not None:
        root = Path(uploads)
        for (pth, size) in db.execute("SELECT path, size_bytes FROM images ORDER BY id"):
            f = root / pth.removeprefix("uploads/")
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_bytes(r.randbytes(min(size, 64_000)))
    db.close()
    return counts
