"""Is the app healthy? Each ``--health-url`` polled until it answers 2xx, ``--health-cmd`` run until it exits 0.

Polling backs off (1 s, 1.5 s, 2.25 s … at most 10 s between attempts) and stops at the overall timeout;
each request has its own timeout (5 s, or less when less time is left). The result names the last answer
(status and the first line of the body, or the error) so a failed check says why. URLs are printed
masked; the command's output only as its last line.
"""

from __future__ import annotations

import logging
import subprocess
import time
import urllib.error
import urllib.request

from golive.release.model import HealthResult
from golive.urls import mask

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_S = 5.0
FIRST_PAUSE_S = 1.0
MAX_PAUSE_S = 10.0


def probe_url(url: str, timeout: float = REQUEST_TIMEOUT_S) -> tuple[bool, str]:
    """One GET: (2xx?, what it answered)."""
    req = urllib.request.Request(url, headers={"User-Agent": "golive-release", "Accept": "*/*"})
    try:
        with urllib.request.urlopen(req, timeout=max(timeout, 0.1)) as resp:  # noqa: S310 - the user's own URL
            body = resp.read(300).decode("utf-8", "replace").strip().splitlines()
            return 200 <= resp.status < 300, f"HTTP {resp.status}" + (f": {body[0][:120]}" if body else "")
    except urllib.error.HTTPError as exc:
        try:
            body = exc.read(300).decode("utf-8", "replace").strip().splitlines()
        except Exception:  # noqa: BLE001
            body = []
        return False, f"HTTP {exc.code}" + (f": {body[0][:120]}" if body else "")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, mask(str(reason))


def probe_cmd(cmd: str, timeout: float) -> tuple[bool, str]:
    try:
        proc = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=max(timeout, 0.1))  # noqa: S602
    except subprocess.TimeoutExpired:
        return False, f"still running after {timeout:.0f} s"
    out = [ln for ln in (proc.stdout + "\n" + proc.stderr).splitlines() if ln.strip()]
    last = mask(out[-1].strip()[:200]) if out else ""
    return proc.returncode == 0, f"exit {proc.returncode}" + (f": {last}" if last else "")


def wait_healthy(urls: list[str], cmd: str | None, timeout_s: float, *, on_event=None) -> list[HealthResult]:
    """Poll every URL (and the command) until each is green or the time is up; one result each."""
    on_event = on_event or (lambda status, message: None)
    deadline = time.monotonic() + timeout_s
    targets = [("url", u) for u in urls] + ([("cmd", cmd)] if cmd else [])
    results = []
    for kind, target in targets:
        t0 = time.monotonic()
        attempts, pause, ok, detail, answer = 0, FIRST_PAUSE_S, False, "", ""
        while True:
            attempts += 1
            left = deadline - time.monotonic()
            limit = min(REQUEST_TIMEOUT_S if kind == "url" else 30.0, max(left, 0.5))
            ok, detail = probe_url(target, limit) if kind == "url" else probe_cmd(target, limit)
            if ok:
                break
            if detail.startswith(("HTTP ", "exit ")):
                answer = detail  # what the app last said, kept when a later attempt only times out
            elif answer:
                detail = f"{answer}; then {detail}"
            left = deadline - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(pause, left))
            pause = min(pause * 1.5, MAX_PAUSE_S)
        name = mask(target) if kind == "url" else f"command: {mask(target)}"
        result = HealthResult(target=name, ok=ok, attempts=attempts, seconds=round(time.monotonic() - t0, 2),
                              detail=detail)
        on_event("ok" if ok else "failed", f"{name}: {'healthy' if ok else 'not healthy'} after {attempts} attempt(s) "
                                           f"({detail})")
        results.append(result)
    return results
