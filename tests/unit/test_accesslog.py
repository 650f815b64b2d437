"""portal.accesslog: Hypercorn's access log without personal-link or message tokens."""

from __future__ import annotations

import pytest
from hypercorn.config import Config

from portal.accesslog import REDACTED, RedactedAtoms, RedactingLogger, redact

TOKEN = "Qm9vbGVhbnNBcmVOb3RUb2tlbnNCdXRUaGlzSXNPbmU"  # 43 characters, like new_token()


def scope(path: str, query: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None):
    return {
        "type": "http",
        "http_version": "1.1",
        "method": "GET",
        "scheme": "https",
        "path": path,
        "query_string": query,
        "headers": headers or [],
        "client": ("192.0.2.1", 50000),
    }


def log_line(log_format: str, atoms) -> str:
    """A line as Hypercorn writes it (its access log format is a %-format)."""
    return log_format % atoms


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"/s/{TOKEN}", "/s/[redacted]"),
        (f"/m/{TOKEN}", "/m/[redacted]"),
        (f"/m/{TOKEN}/attachments/3", "/m/[redacted]/attachments/3"),
        (f"/m/{TOKEN}/open?lang=fi", "/m/[redacted]/open?lang=fi"),
        (f"https://portal.example.fi/s/{TOKEN}#x", "https://portal.example.fi/s/[redacted]#x"),
        (f"next=%2Fm%2F{TOKEN}%2Fcode", "next=%2Fm%2F[redacted]%2Fcode"),
        ("/sent", "/sent"),
        ("/static/portal.css", "/static/portal.css"),
        ("/compose/uploads/12", "/compose/uploads/12"),
        ("/", "/"),
    ],
)
def test_redact_replaces_only_the_token(value, expected):
    assert redact(value) == expected


def test_every_atom_of_a_line_is_redacted():
    atoms = RedactedAtoms(
        scope(
            f"/m/{TOKEN}/open",
            query=f"back=/s/{TOKEN}".encode(),
            headers=[
                (b"referer", f"https://portal.example.fi/s/{TOKEN}".encode()),
                (b"user-agent", b"curl/8"),
            ],
        ),
        {"status": 303, "headers": [(b"location", f"/m/{TOKEN}/code".encode())]},
        0.01,
    )
    line = log_line("%(h)s %(r)s %(R)s %(U)s %(Uq)s %(q)s %(f)s %(a)s %({location}o)s", atoms)

    assert TOKEN not in line
    assert "GET /m/[redacted]/open?back=/s/[redacted] 1.1" in line
    assert "https://portal.example.fi/s/[redacted]" in line
    assert "/m/[redacted]/code" in line
    assert "192.0.2.1:50000" in line and "curl/8" in line


def test_cookies_and_credentials_are_never_logged():
    atoms = RedactedAtoms(
        scope(
            "/compose",
            headers=[(b"cookie", b"sinetti_session=abc123"), (b"authorization", b"Bearer xyz")],
        ),
        {"status": 200, "headers": [(b"set-cookie", b"sinetti_session=def456")]},
        0.01,
    )

    line = log_line("%({cookie}i)s %({authorization}i)s %({set-cookie}o)s", atoms)

    assert line == f"{REDACTED} {REDACTED} {REDACTED}"


def test_environment_variables_are_not_offered_to_the_format(monkeypatch):
    monkeypatch.setenv("PORTAL_SECRET_KEY", "do-not-log-me-" + "s" * 32)

    atoms = RedactedAtoms(scope("/"), {"status": 200, "headers": []}, 0.01)

    assert log_line("%({portal_secret_key}e)s", atoms) == "-"


def test_the_logger_uses_the_redacted_atoms():
    logger = RedactingLogger(Config())

    atoms = logger.atoms(scope(f"/s/{TOKEN}"), {"status": 200, "headers": []}, 0.01)

    assert atoms["r"] == "GET /s/[redacted] 1.1"
