"""Which go-live steps are done: a small JSON journal per configuration, so a re-run resumes at the first
unfinished step (each step also resumes inside: chunks, uploaded files, rewritten rows).

``<state_dir>/go-live/<key>.json``::

    {"key": "…", "steps": {"precheck": {"status": "done", "started_at": …, "finished_at": …, "summary": {…}},
                           "migrate-db": {"status": "failed", "error": "…"}, …}}

Written atomically after every step; no secret ever goes in (summaries are masked).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from golive.urls import mask


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class Journal:
    def __init__(self, state_dir: str | Path, key: str):
        self.path = Path(state_dir) / "go-live" / f"{key}.json"
        self.key = key
        self.data = self._load()

    def _load(self) -> dict:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"key": self.key, "steps": {}}
        except ValueError:  # a torn file (crash while writing is prevented by the atomic rename; be safe)
            return {"key": self.key, "steps": {}}

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(mask(json.dumps(self.data, indent=2, default=str)), encoding="utf-8")
        tmp.replace(self.path)

    def status(self, step: str) -> str:
        return self.data["steps"].get(step, {}).get("status", "pending")

    def done(self, step: str) -> bool:
        return self.status(step) == "done"

    def start(self, step: str) -> None:
        self.data["steps"][step] = {"status": "running", "started_at": _now()}
        self.save()

    def finish(self, step: str, summary: dict | None = None) -> None:
        entry = self.data["steps"].setdefault(step, {"started_at": _now()})
        entry.update(status="done", finished_at=_now(), summary=summary or {})
        entry.pop("error", None)
        self.save()

    def fail(self, step: str, error: str, summary: dict | None = None) -> None:
        entry = self.data["steps"].setdefault(step, {"started_at": _now()})
        entry.update(status="failed", finished_at=_now(), error=mask(error), summary=summary or {})
        self.save()

    def reset(self) -> None:
        self.data = {"key": self.key, "steps": {}}
        self.save()

    def first_unfinished(self, steps: list[str]) -> str | None:
        return next((s for s in steps if not self.done(s)), None)
