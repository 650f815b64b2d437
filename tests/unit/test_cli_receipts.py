"""``sinetti verify-receipt FILE [--key PEMFILE]``: an offline check of a signed receipt."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from portal.cli import main
from portal.config import load_settings
from portal.services import receipts

# ``main`` sets the process's umask: the fixture gives the rest of the run its own back.
pytestmark = pytest.mark.usefixtures("restore_umask")

RECEIPT = {
    "format": receipts.FORMAT,
    "portal": "https://portal.example.fi",
    "message_id": "6f1b6c44-0d5e-4a36-9a55-2d1d9b1c1a11",
    "in_reply_to": None,
    "sender": "liisa@example.com",
    "recipients": ["ville@valtori.fi"],
    "subject": "Valitus 2026/117",
    "sent_at": "2026-12-01T11:43:25Z",
    "attachments": [{"name": "valitus.pdf", "size": 1234, "sha256": "ab" * 32}],
}


@pytest.fixture
def portal_key(tmp_path, monkeypatch) -> Ed25519PrivateKey:
    """The portal's own key, generated into its data directory as on first start."""
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path / "data"))
    return receipts.startup_key(load_settings())


def signed_file(directory: Path, key: Ed25519PrivateKey, **changes: object) -> Path:
    receipt = {**RECEIPT, "key_fingerprint": receipts.fingerprint(key.public_key())}
    document = receipts.sign(receipt, key)
    if changes:
        signature = document.rsplit(',"signature":', 1)[1]
        document = (
            '{"receipt":' + receipts.canonical({**receipt, **changes}).decode() + ',"signature":'
        ) + signature
    path = directory / "receipt.json"
    path.write_text(document, encoding="utf-8")
    return path


def test_a_valid_receipt_exits_0_with_valid_and_a_summary(tmp_path, portal_key, capsys):
    path = signed_file(tmp_path, portal_key)

    assert main(["verify-receipt", str(path)]) == 0

    out = capsys.readouterr().out
    assert out.startswith(
        "valid: signed by the key " + receipts.fingerprint(portal_key.public_key())
    )
    assert "liisa@example.com" in out and "Valitus 2026/117" in out
    assert "valitus.pdf (1234 bytes, SHA-256 " + "ab" * 32 + ")" in out


@pytest.mark.parametrize(
    "changes",
    [
        {"subject": "Valitus 2026/118"},
        {"sent_at": "2026-12-02T11:43:25Z"},
        {"attachments": [{"name": "valitus.pdf", "size": 1235, "sha256": "ab" * 32}]},
    ],
    ids=["subject", "sent_at", "attachment size"],
)
def test_a_tampered_receipt_exits_1_with_invalid(tmp_path, portal_key, capsys, changes):
    path = signed_file(tmp_path, portal_key, **changes)

    assert main(["verify-receipt", str(path)]) == 1

    out = capsys.readouterr().out
    assert out.startswith("INVALID: the signature does not match")
    assert "valid:" not in out


def test_key_option_checks_with_a_published_public_key(tmp_path, capsys):
    key = Ed25519PrivateKey.generate()
    path = signed_file(tmp_path, key)
    published = tmp_path / "sinetti-receipt-key.pem"
    published.write_text(receipts.public_pem(key.public_key()))

    assert main(["verify-receipt", str(path), "--key", str(published)]) == 0
    assert "valid:" in capsys.readouterr().out


def test_a_receipt_of_another_portal_is_invalid_with_this_portals_key(tmp_path, portal_key, capsys):
    path = signed_file(tmp_path, Ed25519PrivateKey.generate())

    assert main(["verify-receipt", str(path)]) == 1

    assert "INVALID: the receipt names the key" in capsys.readouterr().out


def test_a_file_that_is_no_receipt_exits_1(tmp_path, portal_key, capsys):
    path = tmp_path / "receipt.json"
    path.write_text("<html>not a receipt</html>")

    assert main(["verify-receipt", str(path)]) == 1

    assert "INVALID: not a receipt" in capsys.readouterr().out


def test_a_missing_file_or_key_exits_2_naming_it(tmp_path, portal_key, capsys):
    path = signed_file(tmp_path, portal_key)

    assert main(["verify-receipt", str(tmp_path / "nowhere.json")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["verify-receipt", str(path), "--key", str(tmp_path / "no.pem")]) == 2
    assert "no.pem does not exist" in capsys.readouterr().err


def test_without_a_key_file_the_portal_has_none_to_check_with(tmp_path, monkeypatch, capsys):
    """verify-receipt never generates a key: checking against a new key would prove nothing."""
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path / "data"))
    path = signed_file(tmp_path, Ed25519PrivateKey.generate())

    assert main(["verify-receipt", str(path)]) == 2

    assert "receipt-signing.key does not exist" in capsys.readouterr().err
    assert not (tmp_path / "data" / "receipt-signing.key").exists()


async def test_a_receipt_downloaded_from_the_portal_verifies_with_its_published_key(
    client, sign_in, tmp_path, capsys
):
    from .helpers import send_message

    await sign_in("liisa@example.com")
    sent = await send_message(
        client,
        {"recipients": "ville@valtori.fi", "subject": "Hakemus"},
        [("attachments", "a.txt", b"liite")],
    )
    (tmp_path / "receipt.json").write_bytes(
        await (await client.get(sent + "/receipt.json")).get_data()
    )
    key = await (await client.get("/.well-known/sinetti-receipt-key")).get_data()
    (tmp_path / "key.pem").write_bytes(key)

    code = main(
        ["verify-receipt", str(tmp_path / "receipt.json"), "--key", str(tmp_path / "key.pem")]
    )

    assert code == 0, capsys.readouterr()
    assert "subject:     Hakemus" in capsys.readouterr().out
