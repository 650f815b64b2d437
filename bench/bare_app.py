"""The baselines: a bare Quart endpoint that writes ``request.body`` to a file, nothing else
(``?fsync=1``: and fsyncs it before answering), and one that streams a file back in 256 KiB
pieces (as the ``local`` storage backend reads)."""

import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

from quart import Quart, Response, request

app = Quart(__name__)
app.config.update(MAX_CONTENT_LENGTH=None, BODY_TIMEOUT=3600, RESPONSE_TIMEOUT=3600)
UPLOADS = Path(os.environ.get("BENCH_UPLOAD_DIR", "/tmp/sinetti-bench-bare"))
DOWNLOAD = Path(os.environ.get("BENCH_DOWNLOAD_FILE", "/tmp/sinetti-bench-bare/download.bin"))
CHUNK = 256 * 1024


@app.get("/help")
async def ready() -> str:
    return "ok"


@app.post("/upload")
async def upload() -> str:
    UPLOADS.mkdir(parents=True, exist_ok=True)
    path = UPLOADS / secrets.token_hex(8)
    with path.open("wb") as fh:
        async for chunk in request.body:
            fh.write(chunk)
        if request.args.get("fsync"):  # durable, as the portal's storage makes every part
            fh.flush()
            os.fsync(fh.fileno())
    path.unlink()
    return "ok"


@app.get("/download")
async def download() -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        with DOWNLOAD.open("rb") as fh:
            while data := fh.read(CHUNK):
                yield data

    response = Response(chunks(), mimetype="application/octet-stream")
    response.headers["Content-Length"] = str(DOWNLOAD.stat().st_size)
    response.timeout = None
    return response
