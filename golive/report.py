"""Writing reports: JSON files written atomically (the migration report itself is ``golive.migrate.report``)."""

from __future__ import annotations

import json
from pathlib import Path


def write_json(path: str, data: dict) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    tmp.replace(p)
