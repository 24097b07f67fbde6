"""Ctrl-C during ``golive migrate files``: the upload stops within seconds (not when every batch in flight is
done), aborts the multipart upload it was in (nothing left to be billed), keeps what was verified, says how to
resume, exits 130; the same command then finishes the job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from test_files_cli import make_tree


def test_ctrl_c_stops_quickly_aborts_multipart_and_resumes(golive, tmp_path, bucket, s3, proxy):
    src = make_tree(tmp_path / "uploads", 40, size=2000)
    (src / "big").mkdir()
    for i in range(3):
        (src / "big" / f"video{i}.bin").write_bytes(os.urandom(12 << 20))  # 3 parts of 5 MiB each
    total = 43
    # every PUT (and every part) waits: the whole upload would take well over 10 s
    proxy.add(method="PUT", delay=0.4, times=-1)
    state = tmp_path / "state"
    args = ["migrate", "files", "--source", str(src), "--dest", f"s3://{bucket}/m", "--endpoint-url", proxy.url,
            "--workers", "2", "--state-dir", str(state), "--multipart-threshold-mb", "5",
            "--multipart-chunk-mb", "5"]
    proc = subprocess.Popen([sys.executable, "-m", "golive", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, cwd=tmp_path)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if s3.list_multipart_uploads(Bucket=bucket).get("Uploads"):
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.5)  # a part in flight
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 130, (proc.returncode, out, err)
    assert took < 3.5, (took, err)
    assert "interrupted" in err and "run the same command again" in err and "Traceback" not in err, err
    time.sleep(0.5)  # the proxy finishes forwarding what the process had in flight
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads"), "a multipart upload was left behind"
    stored = s3.list_objects_v2(Bucket=bucket, Prefix="m/").get("KeyCount", 0)
    assert stored < total  # really stopped in the middle

    proxy.reset()
    r = golive(*args, "--report", tmp_path / "r.json")
    assert r.code == 0, r
    rep = json.loads(Path(tmp_path / "r.json").read_text())
    assert rep["uploaded"] + rep["unchanged"] == total and rep["problems"] == [], rep
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")
    r = golive("verify", "files", "--source", src, "--dest", f"s3://{bucket}/m", "--endpoint-url", proxy.url,
               "--multipart-threshold-mb", "5", "--multipart-chunk-mb", "5")
    assert r.code == 0 and f"{total} matched" in r.out, r
