"""Benchmark the portal on this machine: page throughput under three ASGI servers, and a big
upload through the compose form against a bare endpoint, with the server's peak memory.

    make bench                        # or: .venv/bin/python bench/run.py --upload-mb 400

Everything runs on loopback in one go, so the numbers are ratios measured side by side, not
promises. Needs `wrk` (Debian package) for the page test; it is skipped, saying so, without it.
"""

from __future__ import annotations

import argparse
import http.client
import http.cookiejar
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MB = 1024 * 1024
BOUNDARY = "----sinettibench7d3c2a"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_command(server: str, app: str, port: int) -> list[str]:
    if server == "hypercorn":
        return [str(BIN / "hypercorn"), app, "--bind", f"127.0.0.1:{port}", "--workers", "1"]
    if server == "uvicorn":
        return [
            str(BIN / "uvicorn"),
            app,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
        ]
    if server == "granian":
        return [
            str(BIN / "granian"),
            "--interface",
            "asgi",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--no-ws",
            app,
        ]
    raise ValueError(server)


class Server:
    def __init__(self, server: str, app: str, env: dict[str, str]) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            server_command(server, app, self.port),
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.base + "/help", timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{server} did not start")

    def pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-g", str(self.proc.pid)], capture_output=True, text=True)
        return [int(pid) for pid in out.stdout.split()]

    def peak_rss_mb(self) -> float:
        """The largest VmHWM (peak resident memory) of the server's processes."""
        peak = 0
        for pid in self.pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            match = re.search(r"VmHWM:\s+(\d+) kB", status)
            if match:
                peak = max(peak, int(match.group(1)))
        return peak / 1024

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, signal.SIGKILL)


def wrk(url: str, seconds: int) -> float:
    out = subprocess.run(
        ["wrk", "-t2", "-c50", f"-d{seconds}s", url], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return float(match.group(1)) if match else 0.0


def multipart_body(
    fields: dict[str, str], file_mb: int
) -> tuple[list[bytes], int, Iterator[bytes]]:
    head = b"".join(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    )
    head += (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="attachments"; '
        f'filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    block = os.urandom(MB)

    def chunks() -> Iterator[bytes]:
        yield head
        for _ in range(file_mb):
            yield block
        yield tail

    return [head, tail], len(head) + file_mb * MB + len(tail), chunks()


def post_stream(
    base: str, path: str, cookie: str, fields: dict[str, str], file_mb: int
) -> tuple[int, float]:
    _parts, length, chunks = multipart_body(fields, file_mb)
    parsed = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=600)
    started = time.perf_counter()
    conn.putrequest("POST", path)
    conn.putheader("Content-Type", f"multipart/form-data; boundary={BOUNDARY}")
    conn.putheader("Content-Length", str(length))
    if cookie:
        conn.putheader("Cookie", cookie)
    conn.endheaders()
    for chunk in chunks:
        conn.send(chunk)
    status = conn.getresponse().status
    elapsed = time.perf_counter() - started
    conn.close()
    return status, elapsed


def sign_in(base: str, data_dir: Path) -> tuple[str, str]:
    """Register, follow the personal link; return the session cookie and the compose CSRF."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(base + "/").read().decode()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    address = f"bench{time.time_ns()}@example.com"
    opener.open(base + "/", urllib.parse.urlencode({"email": address, "csrf_token": csrf}).encode())
    link = ""
    for _ in range(100):
        mailbox = data_dir / "devmailbox.jsonl"
        if mailbox.exists():
            for line in mailbox.read_text().splitlines():
                entry = json.loads(line)
                if entry["to"] == address:
                    link = re.search(r"/s/[\w-]+", entry["text"]).group(0)  # type: ignore[union-attr]
        if link:
            break
        time.sleep(0.1)
    opener.open(base + link)
    compose = opener.open(base + "/compose").read().decode()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', compose).group(1)  # type: ignore[union-attr]
    cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
    return cookie, csrf


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--upload-mb", type=int, default=400)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--servers", default="hypercorn,uvicorn,granian")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="sinetti-bench-"))
    env = {
        **os.environ,
        "PORTAL_DATA_DIR": str(work / "data"),
        "PORTAL_MAX_ATTACHMENTS_BYTES": str((args.upload_mb + 10) * MB),
        "PORTAL_REGISTRATIONS_PER_IP_PER_HOUR": "1000",
        "BENCH_UPLOAD_DIR": str(work / "bare"),
    }
    subprocess.run(
        [str(BIN / "sinetti"), "migrate"], env=env, cwd=ROOT, check=True, capture_output=True
    )
    rows = []
    have_wrk = shutil.which("wrk") is not None
    try:
        for name in args.servers.split(","):
            row: dict[str, object] = {"server": name}
            bare = Server(name, "bench.bare_app:app", env)
            try:
                status, elapsed = post_stream(bare.base, "/upload", "", {}, args.upload_mb)
                assert status == 200, status
                row["bare MB/s"] = args.upload_mb / elapsed
                row["bare peak RSS MB"] = bare.peak_rss_mb()
            finally:
                bare.stop()
            portal = Server(name, "portal.asgi:app", env)
            try:
                if have_wrk:
                    row["start page req/s"] = wrk(portal.base + "/", args.seconds)
                    row["help page req/s"] = wrk(portal.base + "/help", args.seconds)
                cookie, csrf = sign_in(portal.base, work / "data")
                fields = {"csrf_token": csrf, "recipients": "", "subject": "", "action": "attach"}
                status, elapsed = post_stream(
                    portal.base, "/compose", cookie, fields, args.upload_mb
                )
                assert status == 200, status
                row["portal MB/s"] = args.upload_mb / elapsed
                row["portal peak RSS MB"] = portal.peak_rss_mb()
            finally:
                portal.stop()
            row["portal/bare"] = float(row["portal MB/s"]) / float(row["bare MB/s"])  # type: ignore[arg-type]
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    if not have_wrk:
        print("wrk is not installed: page throughput not measured (apt-get install wrk)")
    columns = list(rows[0]) if rows else []
    print(f"\n{args.upload_mb} MB upload, 1 worker, loopback, {os.cpu_count()} cores\n")
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        cells = [
            f"{v:.2f}"
            if isinstance(v, float) and v < 10
            else f"{v:.0f}"
            if isinstance(v, float)
            else str(v)
            for v in row.values()
        ]
        print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
