"""The baseline: a bare Quart endpoint that writes ``request.body`` to a file, nothing else."""

import os
import secrets
from pathlib import Path

from quart import Quart, request

app = Quart(__name__)
app.config.update(MAX_CONTENT_LENGTH=None, BODY_TIMEOUT=3600)
UPLOADS = Path(os.environ.get("BENCH_UPLOAD_DIR", "/tmp/sinetti-bench-bare"))


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
    path.unlink()
    return "ok"
