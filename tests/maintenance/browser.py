"""Headless Chromium through the DevTools protocol (a websocket), offline: open a page, evaluate a script in
it, record every request it makes, take a full-page screenshot."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--hide-scrollbars", "--remote-debugging-port=0"]


class Page:
    def __init__(self, ws) -> None:
        self.ws = ws
        self.n = 0
        self.events: list[dict] = []

    def call(self, method: str, params: dict | None = None, timeout: float = 30) -> dict:
        self.n += 1
        self.ws.send(json.dumps({"id": self.n, "method": method, "params": params or {}}))
        give_up = time.monotonic() + timeout
        while time.monotonic() < give_up:
            msg = json.loads(self.ws.recv(timeout=max(give_up - time.monotonic(), 0.1)))
            if msg.get("id") == self.n:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)
        raise TimeoutError(method)

    def wait_event(self, method: str, timeout: float = 30) -> dict:
        give_up = time.monotonic() + timeout
        for e in self.events:
            if e.get("method") == method:
                return e
        while time.monotonic() < give_up:
            msg = json.loads(self.ws.recv(timeout=max(give_up - time.monotonic(), 0.1)))
            self.events.append(msg)
            if msg.get("method") == method:
                return msg
        raise TimeoutError(method)

    def evaluate(self, expression: str):
        got = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        return got["result"].get("value")


def render(html: Path, screenshot: Path, script: str, width: int = 1280) -> dict:
    """Open ``html`` in headless Chromium; return ``{"value": <script's value>, "requests": [urls]}`` and write a
    full-page PNG screenshot to ``screenshot``."""
    from websockets.sync.client import connect

    profile = Path(tempfile.mkdtemp(prefix="gmt_chromium_"))
    proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},900",
                             "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        give_up = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.monotonic() > give_up or proc.poll() is not None:
                raise RuntimeError("chromium did not start its DevTools endpoint")
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10).read())
        ws_url = next(t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page")
        with connect(ws_url, max_size=None, open_timeout=20) as ws:
            page = Page(ws)
            page.call("Page.enable")
            page.call("Network.enable")
            page.call("Page.navigate", {"url": html.resolve().as_uri()})
            page.wait_event("Page.loadEventFired")
            value = page.evaluate(script)
            metrics = page.call("Page.getLayoutMetrics")
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            height = int(min(size["height"], 12000))
            page.call("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                             "mobile": False})
            shot = page.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
            import base64

            screenshot.parent.mkdir(parents=True, exist_ok=True)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
            requests = [e["params"]["request"]["url"] for e in page.events if e.get("method") == "Network.requestWillBeSent"]
        return {"value": value, "requests": requests, "height": height}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
