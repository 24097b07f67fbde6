"""MySQL's bookkeeping tables: no schemas, so ``_golive_runs`` and ``_golive_chunks`` in the target database."""

from __future__ import annotations

import base64
import zlib

from golive.dialects.bookkeeping import Bookkeeping

#: a stored plan larger than this is kept zlib-compressed (base64, after ``PACKED``): one statement carries it,
#: and a server refuses statements over ``max_allowed_packet`` (16 MB by default: the plan of 10,000 tables is
#: 25 MB of JSON, 0.37 MB compressed). Plans stored plain by earlier versions read as before.
PACK_OVER = 1 << 20
PACKED = "golive-zlib:"


def pack(text: str) -> str:
    """``text`` as stored: as is up to ``PACK_OVER`` characters, else compressed."""
    if len(text) <= PACK_OVER:
        return text
    return PACKED + base64.b64encode(zlib.compress(text.encode(), 6)).decode("ascii")


def unpack(value):
    """What ``pack`` stored, as text (anything else unchanged)."""
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode()
    if isinstance(value, str) and value.startswith(PACKED):
        return zlib.decompress(base64.b64decode(value[len(PACKED):])).decode()
    return value


class MySQLBookkeeping(Bookkeeping):
    """MySQL has no schemas: the tables live in the target database, named ``_golive_runs`` / ``_golive_chunks``."""

    runs = "_golive_runs"
    chunks = "_golive_chunks"
    ddl = [
        """CREATE TABLE IF NOT EXISTS _golive_runs (
  run_key VARCHAR(64) PRIMARY KEY,
  target_schema VARCHAR(64) NOT NULL,
  status VARCHAR(16) NOT NULL,
  plan LONGTEXT NOT NULL,
  source_fingerprint TEXT,
  started_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  finished_at DATETIME(6) NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin""",
        """CREATE TABLE IF NOT EXISTS _golive_chunks (
  run_key VARCHAR(64) NOT NULL,
  table_name VARCHAR(255) NOT NULL,
  chunk_no INT NOT NULL,
  rows_read BIGINT NOT NULL,
  rows_written BIGINT NOT NULL,
  rows_rejected BIGINT NOT NULL,
  rejects LONGTEXT NOT NULL,
  seconds DOUBLE,
  converted LONGTEXT,
  digest VARCHAR(64),
  done_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (run_key, table_name, chunk_no)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin""",
        """CREATE TABLE IF NOT EXISTS _golive_capture (
  run_key VARCHAR(64) PRIMARY KEY,
  state LONGTEXT NOT NULL,
  updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin""",
    ]
    capture = "_golive_capture"
    upsert_capture = ("INSERT INTO _golive_capture (run_key, state) VALUES (%s, %s) ON DUPLICATE KEY UPDATE "
                      "state = VALUES(state), updated_at = CURRENT_TIMESTAMP(6)")
    lock = None
    upsert_run = ("INSERT INTO {runs} (run_key, target_schema, status, plan, source_fingerprint) "
                  "VALUES (%s, %s, 'copying', %s, %s) ON DUPLICATE KEY UPDATE status = 'copying', "
                  "plan = VALUES(plan), source_fingerprint = VALUES(source_fingerprint), started_at = CURRENT_TIMESTAMP(6), "
                  "finished_at = NULL")
    now = "CURRENT_TIMESTAMP(6)"

    @staticmethod
    def _json(v):
        return Bookkeeping._json(unpack(v))

    def start_run(self, run_key: str, schema: str, plan_json: str, fingerprint: str) -> None:
        super().start_run(run_key, schema, pack(plan_json), fingerprint)

    def exists(self) -> bool:
        return bool(self._rows("SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
                               "AND TABLE_NAME = '_golive_runs'"))

    def get_run(self, run_key: str) -> dict | None:
        run = super().get_run(run_key)
        if run:
            import datetime as dt

            for k in ("started_at", "finished_at"):
                if isinstance(run[k], dt.datetime):
                    run[k] = run[k].replace(tzinfo=dt.timezone.utc)
        return run
