"""Great Expectations in a helper process, started early so its import overlaps the checksums.

Importing Great Expectations costs about 3 s of pure Python. In the validating process it would compete
for the interpreter lock with the threads driving the checksums, and under load take several times as
long. A helper process imports it on the other core while those threads work, then runs the suites
(``gx.run_suites``) whenever asked. It serves requests until its stdin closes, so one helper serves
every validation of a process (the CLI starts it before Prefect is even imported).

Protocol: one JSON request per line on stdin; one JSON reply per line on the helper's original stdout
(anything Great Expectations prints goes to stderr, which is discarded). The target URL travels on
stdin, never on the command line.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

from golive.errors import TransientError
from golive.urls import mask

_lock = threading.Lock()
_worker: "Worker | None" = None


#: SQLAlchemy's prefix of a wrapped driver error: "(psycopg.OperationalError) connection failed: …"
_WRAPPED = re.compile(r"\((?:\w+\.)*(\w+)\) (.*)", re.S)


def error_line(text: str) -> tuple[str, bool]:
    """GX's error as one readable line, and whether it is the database connection that failed. GX wraps the
    driver's error in its own and in SQLAlchemy's ("Attempt to connect to datasource failed: due to
    OperationalError('(psycopg.OperationalError) connection failed: …\\nDETAIL: …')"): the driver's first line
    is what says what happened."""
    lost = "Attempt to connect to datasource failed" in text or "OperationalError" in text
    m = _WRAPPED.search(text)
    if m:
        text = m.group(2)
    text = re.split(r"\\n|\n", text)[0].strip().rstrip("')\"").strip()
    return " ".join(text.split()) or "no message", lost


class Worker:
    """A running helper process."""

    def __init__(self) -> None:
        env = dict(os.environ)
        env.setdefault("GX_ANALYTICS_ENABLED", "false")
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.proc = subprocess.Popen([sys.executable, "-m", "golive.validation.gx_worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
                                     encoding="utf-8")
        self.lock = threading.Lock()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def run(self, request: dict) -> dict:
        """Send one request and wait for its reply. Raises ``TransientError`` if the helper died."""
        with self.lock:
            try:
                self.proc.stdin.write(json.dumps(request, default=str) + "\n")
                self.proc.stdin.flush()
                line = self.proc.stdout.readline()
            except (BrokenPipeError, OSError):
                line = ""
        if not line:
            raise TransientError("the Great Expectations helper process stopped unexpectedly; retrying")
        reply = json.loads(line)
        if not reply.get("ok"):
            from golive.errors import GoliveError

            if reply.get("connection"):  # the database went away (a restart): the suites never ran
                raise TransientError(f"Great Expectations could not reach the database: {reply.get('error')}")
            raise GoliveError(f"Great Expectations could not run the suites: {reply.get('error')}")
        return reply["result"]

    def close(self) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass


def wait_docs(timeout: float = 120.0) -> None:
    """Wait until the helper has built the Data Docs of every request so far (they are built after replying)."""
    with _lock:
        w = _worker
    if w is not None and w.alive():
        try:
            w.run({"sync": True})
        except Exception:  # the results are already kept; docs are best effort here
            pass


def prestart() -> None:
    """Start the helper now (if none is running), so its import overlaps whatever comes next."""
    global _worker
    with _lock:
        if _worker is None or not _worker.alive():
            _worker = Worker()


def take() -> Worker:
    prestart()
    assert _worker is not None
    return _worker


def _exit_with_parent(interval: float = 0.5) -> None:
    """Exit as soon as the process that started this helper is gone: a golive killed with ``kill -9`` closes
    the helper's stdin, but a helper still importing Great Expectations (or running a suite) would only read
    that later."""
    import time

    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(0)

    threading.Thread(target=watch, name="gx-parent-watch", daemon=True).start()


def main() -> None:
    _exit_with_parent()
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # what Great Expectations prints must not mix with the replies
    from golive.runtime import apply_offline_defaults

    apply_offline_defaults()
    from golive.urls import parse_url
    from golive.validation import gx

    gx.import_gx()
    for line in sys.stdin:
        if not line.strip():
            continue
        ctx = None
        try:
            req = json.loads(line)
            if req.get("sync"):  # the caller waits for the Data Docs of earlier requests
                replies.write(json.dumps({"ok": True, "result": {}}) + "\n")
                replies.flush()
                continue
            if req.get("kind") == "row_counts":  # backups: row counts on any engine (gx.validate_row_counts)
                out = gx.validate_row_counts(parse_url(req["target"], role="target"), req["tables"], Path(req["out_dir"]),
                                             *([tuple(req["labels"])] if req.get("labels") else []))
                out["outcomes"] = [o.model_dump() for o in out["outcomes"]]
                replies.write(json.dumps({"ok": True, "result": out}, default=str) + "\n")
                replies.flush()
                continue
            out, ctx = gx.validate_suites(parse_url(req["target"], role="target"), req["schema"], req["suites"],
                                          req["tables"], req["expected_rows"], Path(req["out_dir"]),
                                          data_docs=req.get("data_docs", True))
            out["outcomes"] = [o.model_dump() for o in out["outcomes"]]
            import resource

            ru = resource.getrusage(resource.RUSAGE_SELF)
            out["seconds"]["gx_process_cpu"] = round(ru.ru_utime + ru.ru_stime, 3)
            reply = {"ok": True, "result": out}
        except Exception as exc:  # reported to the validating process, one line
            text, lost = error_line(str(exc).strip() or type(exc).__name__)
            reply = {"ok": False, "error": mask(text), "connection": lost}
        replies.write(json.dumps(reply, default=str) + "\n")
        replies.flush()
        if ctx is not None and req.get("data_docs", True):
            # after the reply: the Data Docs are built while the caller writes its report
            gx.build_docs(ctx, {})


if __name__ == "__main__":
    main()
