"""Vendored front-end files match what portal/static/vendor/VENDOR.md records."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

VENDOR = Path(__file__).resolve().parents[2] / "portal" / "static" / "vendor"
ROWS = re.findall(
    r"^\| (\S+) \| [^|]+ \| ([\w.]+) \| ([0-9a-f]{64}) \|$",
    (VENDOR / "VENDOR.md").read_text(encoding="utf-8"),
    re.M,
)


def test_vendor_md_lists_the_htmx_file():
    assert any(name.startswith("htmx-") for name, _version, _sha in ROWS)


@pytest.mark.parametrize(("name", "version", "sha256"), ROWS)
def test_vendored_file_has_the_recorded_sha256(name, version, sha256):
    data = (VENDOR / name).read_bytes()

    assert hashlib.sha256(data).hexdigest() == sha256
    assert version in name


def test_every_vendored_file_is_recorded():
    recorded = {name for name, _version, _sha in ROWS}

    assert {p.name for p in VENDOR.iterdir() if p.name != "VENDOR.md"} == recorded


async def test_pages_load_the_recorded_htmx_version_from_our_own_static_files(client):
    (htmx,) = [name for name, _v, _s in ROWS if name.startswith("htmx-")]
    html = await (await client.get("/")).get_data(as_text=True)

    assert f'src="/static/vendor/{htmx}"' in html
    assert (await client.get(f"/static/vendor/{htmx}")).status_code == 200
