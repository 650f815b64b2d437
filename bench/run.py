"""Benchmark the portal's big-file paths on this machine, side by side with a bare endpoint.

    make bench                                   # everything but the server comparison
    .venv/bin/python bench/run.py --only chunked,zip --repeat 1     # a quick look
    .venv/bin/python bench/run.py --only servers # the portal under hypercorn, uvicorn, granian

Parts (``--only``, comma-separated; default all but ``servers``):

- ``bare``: a bare Quart endpoint writing ``request.body`` to a file (the baseline), and one
  streaming a file back;
- ``chunked``: the compose page's chunked upload (begin, then sequential 8 MiB PUTs on one
  keep-alive connection), at ``--upload-mb`` and at ``--small-mb`` (memory must not grow);
- ``multipart``: the same file through the plain compose form (one multipart POST);
- ``download``, ``zip``: a message with one such attachment is sent, the recipient opens it and
  downloads the attachment, then the zip (and the sender the zip of what was sent);
- ``concurrent``: ``--senders`` signed-in senders upload ``--sender-mb`` each at the same time;
- ``s3``: the chunked upload (and a download) with ``PORTAL_STORAGE=s3`` against moto's S3
  server on loopback (its own process: it keeps objects in memory);
- ``encryption``: the chunked and multipart uploads, the download and the zip with and without
  encryption at rest (``bench/unsealed_app.py``), the two servers up at once and their runs
  in turn (A B A B …), on local storage and (with ``s3``) on moto: each encrypted speed as a
  ratio to the unencrypted one measured beside it;
- ``scan``: the delay the malware check adds: from Send to the recipients' notifications being
  released, for a message with the big file, sent at once after the upload and sent once the
  file was checked in the draft, with a real clamd on loopback (the tests' own, with their
  test signatures; skipped when clamd is not installed);
- ``servers``: the older comparison of ASGI servers: pages under ``wrk`` and the multipart
  upload under hypercorn, uvicorn and granian.

Every scenario gets a fresh server process, and its peak resident memory (VmHWM) is reset just
before the measured requests (``/proc/<pid>/clear_refs``), so "peak RSS" is that scenario's.
The load generator runs on the same machine: the numbers are ratios measured side by side, not
promises. Results are printed as a Markdown table and written to ``bench/results.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from client import (
    MB,
    Browser,
    chunked_upload,
    download,
    open_as_recipient,
    post_multipart,
    send_message,
    sign_in,
)

from portal.testing import free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PARTS = (
    "bare",
    "chunked",
    "multipart",
    "download",
    "zip",
    "concurrent",
    "s3",
    "encryption",
    "scan",
    "servers",
)
PORTAL = "portal.asgi:app"
UNSEALED = "bench.unsealed_app:app"  # the same portal with encryption at rest switched off
ENCRYPTED, UNENCRYPTED = "encrypted: ", "unencrypted: "  # the rows measured side by side
DEFAULT_PARTS = ",".join(p for p in PARTS if p != "servers")
CHUNK = 8 * MB  # what the portal answers as chunk_size; the client follows the server's
_REMOVE = re.compile(r"/compose/attachments/(\d+)/remove")


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


def _status_kb(pid: int, field: str) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(rf"{field}:\s+(\d+) kB", status)
    return int(match.group(1)) if match else 0


class Server:
    """An ASGI server in a process group of its own; its output goes to ``log``."""

    def __init__(self, server: str, app: str, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:  # a file, not a pipe nobody reads: that could fill and block
            self.proc = subprocess.Popen(
                server_command(server, app, self.port),
                env=env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.base + "/help", timeout=1):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{server} {app} did not start:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-g", str(self.proc.pid)], capture_output=True, text=True)
        return [int(pid) for pid in out.stdout.split()]

    def peak_rss_mb(self) -> float:
        """The largest VmHWM (peak resident memory) of the server's processes."""
        return max((_status_kb(pid, "VmHWM") for pid in self.pids()), default=0) / 1024

    def rss_mb(self) -> float:
        return max((_status_kb(pid, "VmRSS") for pid in self.pids()), default=0) / 1024

    def cpu_seconds(self) -> float:
        """User and system time of the server's processes (all their threads) so far."""
        ticks = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")

    def reset_peak(self) -> None:
        """Start VmHWM again from the current RSS (``clear_refs`` 5, Linux ≥ 4.0)."""
        for pid in self.pids():
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        assert self.peak_rss_mb() <= self.rss_mb() + 1, "could not reset the peak RSS"

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


#: One measured side: the server, what is timed, and what runs untimed between two runs.
Side = tuple["Server", Callable[[], object], Callable[[], object] | None]


def measure(sides: list[Side], mb: float, repeat: int, warmup: int = 1) -> list[dict[str, Any]]:
    """Time each side's action ``warmup`` times untimed, then ``repeat`` times, the sides in
    turn (A B A B …: two sides compared meet the same moments of a noisy machine, and their
    ratio is steadier than that of two separate series); per side the median speed, the
    server's CPU time per wall time (100 % is one core) and its peak memory over all runs.
    The first run in a fresh process is often the slowest."""
    speeds: list[list[float]] = [[] for _ in sides]
    cpu: list[list[float]] = [[] for _ in sides]
    os.sync()  # what earlier scenarios left to write back must not slow this one down
    start_rss = []
    for server, _, _ in sides:
        server.reset_peak()
        start_rss.append(server.rss_mb())
    for run in range(warmup + repeat):
        for index, (server, action, between) in enumerate(sides):
            if run and between is not None:
                between()
                os.sync()
            cpu_before = server.cpu_seconds()
            started = time.perf_counter()
            action()
            elapsed = time.perf_counter() - started
            if run >= warmup:
                speeds[index].append(mb / elapsed)
                cpu[index].append((server.cpu_seconds() - cpu_before) / elapsed)
    return [
        {
            "MB": mb,
            "MB/s": statistics.median(speeds[index]),
            "runs MB/s": [round(speed) for speed in speeds[index]],
            "server CPU %": 100 * statistics.median(cpu[index]),
            "start RSS MB": start_rss[index],
            "peak RSS MB": server.peak_rss_mb(),
        }
        for index, (server, _, _) in enumerate(sides)
    ]


#: A scenario on a prepared server: its name, what is timed, what runs untimed between runs.
Scenario = tuple[str, Callable[[], object], Callable[[], object] | None]


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.data = work / "data"
        self.size = args.upload_mb * MB
        self.block = os.urandom(CHUNK)
        self.env = {
            **os.environ,
            "PORTAL_DATA_DIR": str(self.data),
            "PORTAL_MAX_ATTACHMENTS_BYTES": str((max(args.upload_mb, args.sender_mb) + 10) * MB),
            "PORTAL_REGISTRATIONS_PER_IP_PER_HOUR": "10000",
            "BENCH_UPLOAD_DIR": str(work / "bare"),
            "BENCH_DOWNLOAD_FILE": str(work / "download.bin"),
        }
        self.parts: set[str] = set()
        self.rows: list[dict[str, Any]] = []
        self.baseline: dict[str, float] = {}
        self.servers_run = 0

    def server(self, app: str, env: dict[str, str] | None = None) -> Server:
        self.servers_run += 1
        log = self.work / "logs" / f"{self.servers_run:02d}-{app.split(':')[0]}.log"
        return Server(self.args.server, app, env or self.env, log)

    def measure(
        self,
        server: Server,
        mb: float,
        action: Callable[[], object],
        between: Callable[[], object] | None = None,
    ) -> dict[str, Any]:
        return measure([(server, action, between)], mb, self.args.repeat, self.args.warmup)[0]

    def add(
        self, scenario: str, result: dict[str, Any], baseline: str = "", note: str = ""
    ) -> None:
        row = {"scenario": scenario, **result, "note": note}
        if baseline in self.baseline:
            row["vs bare"] = result["MB/s"] / self.baseline[baseline]
        self.rows.append(row)
        print(json.dumps(row), flush=True)

    # -- the parts -------------------------------------------------------------------------

    def bare(self) -> None:
        mb = self.args.upload_mb
        with (self.work / "download.bin").open("wb") as fh:
            for _ in range(mb):
                fh.write(self.block[:MB])
        with self.server("bench.bare_app:app") as server:
            browser = Browser(server.base)

            def upload() -> None:
                status, _, _ = post_multipart(browser, "/upload", {}, mb)
                assert status == 200, status

            result = self.measure(server, mb, upload)
            self.baseline["upload"] = result["MB/s"]
            self.add("bare upload (request.body → file), the baseline", result)
            view = memoryview(self.block)
            for path, what in (("/upload", ""), ("/upload?fsync=1", ", fsync each")):

                def pieces(path: str = path) -> None:
                    for offset in range(0, self.size, CHUNK):
                        piece = view[: min(CHUNK, self.size - offset)]
                        status, _, _ = browser.request("POST", path, piece)
                        assert status == 200, status

                result = self.measure(server, mb, pieces)
                self.add(f"bare upload in 8 MiB POSTs{what}", result, "upload")

            def read_back() -> None:
                assert download(browser, "/download") == self.size

            result = self.measure(server, mb, read_back)
            self.baseline["download"] = result["MB/s"]
            self.add("bare download (file → response, 256 KiB reads)", result)

    def _remover(self, browser: Browser, ids: list[int]) -> Callable[[], None]:
        def remove() -> None:
            while ids:
                status, _ = browser.form(
                    f"/compose/attachments/{ids.pop()}/remove", {"csrf_token": browser.csrf}
                )
                assert status == 303, status

        return remove

    # A scenario is prepared on a server (signed in, a message sent) and gives what is timed
    # there; :meth:`run` measures it on the portal, or on the portal with and without
    # encryption at rest side by side (``paired``).

    def run(
        self,
        label: str,
        mb: float,
        prepare: Callable[[Server], list[Scenario]],
        env: dict[str, str] | None = None,
        *,
        baseline: str = "",
        note: str = "",
        paired: bool = False,
    ) -> None:
        if not paired:
            with self.server(PORTAL, env) as server:
                for name, action, between in prepare(server):
                    self.add(
                        label + name, self.measure(server, mb, action, between), baseline, note
                    )
            return
        with self.server(PORTAL, env) as sealed, self.server(UNSEALED, env) as plain:
            for (name, action, between), (_, plain_action, plain_between) in zip(
                prepare(sealed), prepare(plain), strict=True
            ):
                encrypted, unencrypted = measure(
                    [(sealed, action, between), (plain, plain_action, plain_between)],
                    mb,
                    self.args.repeat,
                    self.args.warmup,
                )
                self.add(f"{ENCRYPTED}{label}{name}", encrypted, baseline, note)
                self.add(f"{UNENCRYPTED}{label}{name}", unencrypted, baseline, note)

    def chunked_scenario(self, mb: int) -> Callable[[Server], list[Scenario]]:
        def prepare(server: Server) -> list[Scenario]:
            browser = sign_in(server.base, self.data)
            ids: list[int] = []

            def upload() -> None:
                ids.append(chunked_upload(browser, mb * MB, self.block)["id"])

            return [(f"chunked upload, {mb} MB", upload, self._remover(browser, ids))]

        return prepare

    def multipart_scenario(self, server: Server) -> list[Scenario]:
        mb = self.args.upload_mb
        browser = sign_in(server.base, self.data)
        ids: list[int] = []
        fields = {"csrf_token": browser.csrf, "recipients": "", "subject": "", "action": "attach"}

        def upload() -> None:
            status, _, page = post_multipart(browser, "/compose", fields, mb)
            assert status == 200, status
            ids.extend(int(i) for i in _REMOVE.findall(page.decode()))
            assert ids, "the upload did not become an attachment"

        return [("multipart compose POST", upload, self._remover(browser, ids))]

    def download_scenarios(self, parts: set[str]) -> Callable[[Server], list[Scenario]]:
        def prepare(server: Server) -> list[Scenario]:
            sender = sign_in(server.base, self.data)
            attachment = chunked_upload(sender, self.size, self.block)
            reader_address = f"reader{time.time_ns()}@example.fi"
            message_id = send_message(sender, reader_address)
            reader, link = open_as_recipient(server.base, self.data, reader_address)
            scenarios: list[Scenario] = []
            if "download" in parts:

                def one() -> None:
                    path = f"{link}/attachments/{attachment['id']}"
                    assert download(reader, path) == self.size

                scenarios.append(("attachment download (recipient)", one, None))
            if "zip" in parts:
                for who, browser, path in (
                    ("recipient", reader, f"{link}/zip"),
                    ("sender", sender, f"/sent/{message_id}/zip"),
                ):

                    def whole(browser: Browser = browser, path: str = path) -> None:
                        assert download(browser, path) > self.size

                    scenarios.append((f"zip download ({who})", whole, None))
            return scenarios

        return prepare

    def uploads_and_downloads(
        self, parts: set[str], label: str = "", env: dict[str, str] | None = None, **how: Any
    ) -> None:
        """The chunked and multipart uploads and the downloads of ``parts``."""
        mb = self.args.upload_mb
        note = "begin + 8 MiB PUTs"
        if "chunked" in parts:
            sizes = [mb] if label or how else [mb, self.args.small_mb]
            for size in dict.fromkeys(sizes):
                prepare = self.chunked_scenario(size)
                self.run(label, size, prepare, env, baseline="upload", note=note, **how)
        if "multipart" in parts:
            self.run(label, mb, self.multipart_scenario, env, baseline="upload", **how)
        if parts & {"download", "zip"}:
            self.run(label, mb, self.download_scenarios(parts), env, baseline="download", **how)

    def concurrent(self) -> None:
        count, mb = self.args.senders, self.args.sender_mb
        with self.server("portal.asgi:app") as server:
            browsers = [sign_in(server.base, self.data) for _ in range(count)]
            results: list[Any] = [None] * count
            gate = threading.Barrier(count + 1)
            done = [0.0] * count

            def upload(index: int) -> None:
                gate.wait()
                try:
                    results[index] = chunked_upload(browsers[index], mb * MB, self.block)
                except BaseException as exc:
                    results[index] = exc
                done[index] = time.perf_counter()

            threads = [threading.Thread(target=upload, args=(i,)) for i in range(count)]
            for thread in threads:
                thread.start()
            os.sync()
            server.reset_peak()
            start_rss = server.rss_mb()
            cpu_before = server.cpu_seconds()
            gate.wait()
            started = time.perf_counter()
            for thread in threads:
                thread.join()
            elapsed = max(done) - started
            cpu = (server.cpu_seconds() - cpu_before) / (time.perf_counter() - started)
            failed = [r for r in results if not (isinstance(r, dict) and r["size"] == mb * MB)]
            slowest, fastest = max(done) - started, min(done) - started
            self.add(
                f"{count} concurrent chunked uploads × {mb} MB",
                {
                    "MB": count * mb,
                    "MB/s": count * mb / elapsed,
                    "server CPU %": 100 * cpu,
                    "start RSS MB": start_rss,
                    "peak RSS MB": server.peak_rss_mb(),
                    "succeeded": count - len(failed),
                },
                "upload",
                f"{count - len(failed)}/{count} got their attachment; "
                f"first done {fastest:.1f} s, last {slowest:.1f} s",
            )
            if failed:
                print(f"failed uploads: {failed[:3]}", file=sys.stderr)

    def encryption(self) -> None:
        """The local-storage scenarios with and without encryption at rest, side by side (S3's:
        in s3)."""
        self.uploads_and_downloads({"chunked", "multipart", "download", "zip"}, paired=True)

    def scan(self) -> None:
        from portal.testing import running_clamd_server

        if not (shutil.which("clamd") or Path("/usr/sbin/clamd").exists()):
            print("scan skipped: clamd is not installed (make clamd)", flush=True)
            return
        mb = self.args.upload_mb
        with running_clamd_server(self.work / "clamd", stream_max_length=f"{mb + 100}M") as clamd:
            env = {**self.env, "PORTAL_SCANNER": "clamav", "PORTAL_CLAMAV_ADDRESS": clamd.address}
            with self.server(PORTAL, env) as server:
                sender = sign_in(server.base, self.data)
                for checked_first in (False, True):
                    self._scan_delay(server, sender, checked_first)

    def _scan_delay(self, server: Server, sender: Browser, checked_first: bool) -> None:
        """Upload the big file, Send (at once, or once the file was checked in the draft: a
        sender who writes the text after adding the file), and time Send → released."""
        mb = self.args.upload_mb
        attachment_id = chunked_upload(sender, self.size, self.block)["id"]
        if checked_first:
            _wait_until(self.data / "sinetti.sqlite3", _CHECKED_EARLY, attachment_id)
        os.sync()
        server.reset_peak()
        start_rss, cpu_before = server.rss_mb(), server.cpu_seconds()
        started = time.perf_counter()
        message_id = send_message(sender, f"reader{time.time_ns()}@example.fi")
        sent = time.perf_counter()
        state = _wait_for_scan(self.data / "sinetti.sqlite3", message_id)
        delay = time.perf_counter() - sent
        assert state == "clean", state
        when = "once its file was checked" if checked_first else "at once after the upload"
        self.add(
            f"malware check of a {mb} MB message (clamd), sent {when}",
            {
                "MB": mb,
                "MB/s": mb / delay,
                "server CPU %": 100 * (server.cpu_seconds() - cpu_before) / delay,
                "start RSS MB": start_rss,
                "peak RSS MB": server.peak_rss_mb(),
                "delay s": round(delay, 2),
            },
            note=f"{delay:.2f} s from Send (itself {sent - started:.2f} s) to the "
            "notifications released",
        )

    def s3(self) -> None:
        try:
            import moto.server
            import sinetti_storage_s3  # noqa: F401
        except ImportError as exc:
            print(f"s3 skipped: {exc}", flush=True)
            return
        (self.work / "logs").mkdir(parents=True, exist_ok=True)
        moto = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "s3_server.py")],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=(self.work / "logs" / "moto.log").open("ab"),
            text=True,
        )
        try:
            line = moto.stdout.readline() if moto.stdout else ""
            if not line:
                raise RuntimeError("the moto S3 server did not start (see its log)")
            env = {**self.env, **json.loads(line)}
            self.uploads_and_downloads({"chunked"}, "s3 (moto) ", env)
            moto_peak = _status_kb(moto.pid, "VmHWM") / 1024
            self.rows[-1]["note"] += f"; moto's own peak RSS {moto_peak:.0f} MB (objects in memory)"
            s3_parts = {"chunked", "multipart", "download"}
            self.uploads_and_downloads(s3_parts - {"chunked"}, "s3 (moto) ", env)
            if "encryption" in self.parts:
                self.uploads_and_downloads(s3_parts, "s3 (moto) ", env, paired=True)
        finally:
            if moto.stdin:
                moto.stdin.close()
            try:
                moto.wait(timeout=10)
            except subprocess.TimeoutExpired:
                moto.kill()
                moto.wait()

    def servers(self) -> list[dict[str, Any]]:
        """The older comparison: the same bare and multipart uploads, and pages under wrk,
        under each ASGI server."""
        mb = self.args.upload_mb
        have_wrk = shutil.which("wrk") is not None
        if not have_wrk:
            print("wrk is not installed: page throughput not measured (apt-get install wrk)")
        rows = []
        for name in self.args.servers.split(","):
            row: dict[str, Any] = {"server": name}
            with Server(name, "bench.bare_app:app", self.env, self.work / "logs" / "bare.log") as s:
                started = time.perf_counter()
                status, _, _ = post_multipart(Browser(s.base), "/upload", {}, mb)
                assert status == 200, status
                row["bare MB/s"] = mb / (time.perf_counter() - started)
                row["bare peak RSS MB"] = s.peak_rss_mb()
            with Server(name, "portal.asgi:app", self.env, self.work / "logs" / "portal.log") as s:
                if have_wrk:
                    row["start page req/s"] = wrk(s.base + "/", self.args.seconds)
                    row["help page req/s"] = wrk(s.base + "/help", self.args.seconds)
                browser = sign_in(s.base, self.data)
                fields = {"csrf_token": browser.csrf, "recipients": "", "action": "attach"}
                started = time.perf_counter()
                status, _, _ = post_multipart(browser, "/compose", fields, mb)
                assert status == 200, status
                row["portal MB/s"] = mb / (time.perf_counter() - started)
                row["portal peak RSS MB"] = s.peak_rss_mb()
            row["portal/bare"] = row["portal MB/s"] / row["bare MB/s"]
            rows.append(row)
            print(json.dumps(row), flush=True)
        return rows


def wrk(url: str, seconds: int) -> float:
    out = subprocess.run(
        ["wrk", "-t2", "-c50", f"-d{seconds}s", url], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return float(match.group(1)) if match else 0.0


def cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}" if value < 10 else f"{value:.0f}"
    return "" if value is None else str(value)


def markdown(rows: list[dict[str, Any]], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


_CHECKED_EARLY = "SELECT 1 FROM attachment WHERE id = ? AND scanned_at IS NOT NULL"


def _wait_until(database: Path, query: str, *args: object, timeout: float = 900) -> None:
    """Poll the portal's SQLite database (read-only) until ``query`` finds a row."""
    import sqlite3

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
            if db.execute(query, args).fetchone():
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing found by {query} {args} after {timeout} s")


def _wait_for_scan(database: Path, message_id: str, timeout: float = 900) -> str:
    """The message's malware-check state once it is no longer ``checking``."""
    import sqlite3

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
            row = db.execute(
                "SELECT scan_state FROM message WHERE id = ?", (message_id,)
            ).fetchone()
        if row and row[0] != "checking":
            return str(row[0])
        time.sleep(0.05)
    raise TimeoutError(f"message {message_id} still being checked after {timeout} s")


def targets(rows: list[dict[str, Any]], args: argparse.Namespace) -> list[dict[str, Any]]:
    """The goals, checked against what was measured."""
    by_name = {row["scenario"]: row for row in rows}
    checks: list[dict[str, Any]] = []

    def check(goal: str, measured: str, ok: bool) -> None:
        checks.append({"target": goal, "measured": measured, "met": ok})

    for name in (f"chunked upload, {args.upload_mb} MB", "multipart compose POST"):
        row = by_name.get(name)
        if row and "vs bare" in row:
            check(f"{name} ≥ 80 % of bare", f"{row['vs bare']:.0%}", row["vs bare"] >= 0.8)
    for row in rows:
        big = row["MB"] >= args.upload_mb and not row["scenario"].startswith("bare")
        if big and "concurrent" not in row["scenario"]:
            peak = row["peak RSS MB"]
            check(f"{row['scenario']}: peak RSS < 100 MB", f"{peak:.0f} MB", peak < 100)
    big = by_name.get(f"chunked upload, {args.upload_mb} MB")
    small = by_name.get(f"chunked upload, {args.small_mb} MB")
    if big and small and args.upload_mb != args.small_mb:
        growth = big["peak RSS MB"] - small["peak RSS MB"]
        check(
            f"chunked peak RSS does not grow from {args.small_mb} to {args.upload_mb} MB",
            f"{small['peak RSS MB']:.0f} → {big['peak RSS MB']:.0f} MB",
            growth < 10,
        )
    for row in rows:
        name = row["scenario"].removeprefix(ENCRYPTED)
        plain = by_name.get(UNENCRYPTED + name)
        if row["scenario"].startswith(ENCRYPTED) and plain is not None:
            ratio = row["MB/s"] / plain["MB/s"]
            check(f"{name}: encrypted ≥ 0.8 × unencrypted", f"{ratio:.2f}", ratio >= 0.8)
    for row in rows:
        if "zip download" in row["scenario"] and not row["scenario"].startswith("s3"):
            check(f"{row['scenario']} ≥ 300 MB/s", f"{row['MB/s']:.0f} MB/s", row["MB/s"] >= 300)
    return checks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=DEFAULT_PARTS, help=f"parts, of: {','.join(PARTS)}")
    parser.add_argument("--upload-mb", type=int, default=400, help="the big file (MiB)")
    parser.add_argument("--small-mb", type=int, default=100, help="the chunked upload again")
    parser.add_argument("--senders", type=int, default=20)
    parser.add_argument("--sender-mb", type=int, default=20, help="each concurrent sender's file")
    parser.add_argument("--repeat", type=int, default=5, help="runs per scenario (median)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs before those")
    parser.add_argument("--server", default="hypercorn", help="the ASGI server of the scenarios")
    parser.add_argument("--servers", default="hypercorn,uvicorn,granian", help="for 'servers'")
    parser.add_argument("--seconds", type=int, default=8, help="wrk's duration for 'servers'")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results.json"))
    args = parser.parse_args()
    parts = set(PARTS) if args.only == "all" else set(args.only.split(","))
    if parts - set(PARTS):
        parser.error(f"unknown parts: {', '.join(sorted(parts - set(PARTS)))}")

    work = Path(tempfile.mkdtemp(prefix="sinetti-bench-"))
    bench = Bench(args, work)
    bench.parts = parts
    subprocess.run(
        [str(BIN / "sinetti"), "migrate"], env=bench.env, cwd=ROOT, check=True, capture_output=True
    )
    started = time.monotonic()
    server_rows: list[dict[str, Any]] = []
    try:
        if parts & {"chunked", "multipart", "download", "zip", "concurrent", "s3", "encryption"}:
            bench.bare()  # the baseline the others are compared with
        bench.uploads_and_downloads(parts)
        if "concurrent" in parts:
            bench.concurrent()
        if "encryption" in parts:
            bench.encryption()
        if "scan" in parts:
            bench.scan()
        if "s3" in parts:
            bench.s3()
        if "servers" in parts:
            server_rows = bench.servers()
    except BaseException:
        for log in sorted((work / "logs").glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-15:]
            print(f"--- {log.name} ---\n" + "\n".join(tail), file=sys.stderr)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)

    machine = (
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} cores, {args.server} (1 worker), loopback, "
        f"median of {args.repeat} run(s) after {args.warmup} warm-up, "
        f"{time.monotonic() - started:.0f} s in all"
    )
    columns = [
        "scenario",
        "MB",
        "MB/s",
        "vs bare",
        "server CPU %",
        "start RSS MB",
        "peak RSS MB",
        "note",
    ]
    print(f"\n{machine}\n")
    if bench.rows:
        print(markdown(bench.rows, columns))
    checks = targets(bench.rows, args)
    if checks:
        print()
        print(markdown(checks, ["target", "measured", "met"]))
    if server_rows:
        print(f"\n{args.upload_mb} MB multipart upload and pages, by ASGI server\n")
        print(markdown(server_rows, list(server_rows[0])))
    Path(args.json).write_text(
        json.dumps(
            {
                "machine": machine,
                "args": vars(args),
                "scenarios": bench.rows,
                "targets": checks,
                "servers": server_rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nwritten to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
