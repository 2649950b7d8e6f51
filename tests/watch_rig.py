"""Real Prometheus and headless Chromium for the tests of /metrics and the status page.

Prometheus (Debian's `prometheus`) runs with its own config and storage directory on 127.0.0.1,
a free port, a 1 s scrape interval; Chromium (Debian's `chromium`) loads a page with a fresh
profile and no network beyond what it is pointed at. Both are bounded in time and stopped.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import time
import urllib.parse
import urllib.request
import zlib
from collections.abc import Iterable
from pathlib import Path

from conftest import free_port, require_tool


class Prometheus:
    def __init__(self, tmp_path: Path, jobs: dict[str, tuple[str, str | None]]):
        """``jobs``: job name -> (host:port, bearer token file or None)."""
        binary = require_tool("prometheus")
        self.port = free_port(socket.SOCK_STREAM)
        self.dir = tmp_path / "prometheus"
        self.dir.mkdir()
        lines = ["global:", "  scrape_interval: 1s", "  scrape_timeout: 1s", "scrape_configs:"]
        for job, (target, token_file) in jobs.items():
            lines += [f"  - job_name: {job}", "    static_configs:", f"      - targets: ['{target}']"]
            if token_file:
                lines += ["    authorization:", "      type: Bearer", f"      credentials_file: {token_file}"]
        (self.dir / "prometheus.yml").write_text("\n".join(lines) + "\n")
        self.log = open(self.dir / "prometheus.log", "wb")
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={self.dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1h",
                "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            cwd=self.dir,
        )

    def text(self) -> str:
        return (self.dir / "prometheus.log").read_text(errors="replace")

    def query(self, expression: str) -> float | None:
        """The value of an instant query with one result, else None (not scraped yet)."""
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                body = json.load(answer)
        except (OSError, ValueError):
            return None
        result = body.get("data", {}).get("result", [])
        if body.get("status") != "success" or len(result) != 1:
            return None
        return float(result[0]["value"][1])

    def targets_up(self) -> dict[str, str]:
        url = f"http://127.0.0.1:{self.port}/api/v1/targets"
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                body = json.load(answer)
        except (OSError, ValueError):
            return {}
        return {
            t["labels"]["job"]: t["health"] + (f" ({t['lastError']})" if t.get("lastError") else "")
            for t in body["data"]["activeTargets"]
        }

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.log.close()


CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
)


def chromium(
    tmp_path: Path,
    url: str,
    *,
    screenshot: Path | None = None,
    size: tuple[int, int] = (412, 1600),
    timeout: float = 90.0,
) -> str:
    """Load ``url`` in headless Chromium with a fresh profile; the DOM it built (or, with
    ``screenshot``, write a PNG of what it drew and return its stderr)."""
    binary = require_tool("chromium")
    profile = tmp_path / f"chromium-profile-{time.monotonic_ns()}"
    argv = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}"]
    argv += [f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]
    env = dict(os.environ, HOME=str(tmp_path))
    done = subprocess.run(argv + [url], capture_output=True, timeout=timeout, env=env)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return done.stdout.decode(errors="replace") if not screenshot else done.stderr.decode(errors="replace")


# -- reading a PNG (Chromium's screenshot), to count the pixels of a colour -----------------------


def png_pixels(path: Path) -> tuple[int, int, bytes, int]:
    """(width, height, raw pixel bytes, bytes per pixel) of an 8-bit RGB/RGBA, non-interlaced PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunk = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    out = bytearray()
    previous = bytearray(stride)
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, previous, strict=False))
        elif kind == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = previous[i]
                c = previous[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        out += line
        previous = line
    return width, height, bytes(out), bpp


def tallest_run(path: Path, rgb: Iterable[int], tolerance: int = 6) -> int:
    """The longest vertical run of pixels within ``tolerance`` of ``rgb`` in the PNG at ``path``:
    a bar of a chart is tall, a legend's swatch or a letter is not."""
    width, height, pixels, bpp = png_pixels(path)
    r, g, b = rgb
    runs = [0] * width
    best = 0
    for y in range(height):
        row = y * width * bpp
        for x in range(width):
            i = row + x * bpp
            if (
                abs(pixels[i] - r) <= tolerance
                and abs(pixels[i + 1] - g) <= tolerance
                and abs(pixels[i + 2] - b) <= tolerance
            ):
                runs[x] += 1
                if runs[x] > best:
                    best = runs[x]
            else:
                runs[x] = 0
    return best
