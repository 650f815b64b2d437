"""portal.services.receipts: the signing key, the canonical form, signing, verifying, tampering,
and the README's recipes (Python, OpenSSL) run for real."""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from portal.config import ConfigError
from portal.services import receipts

from ..helpers import plain_settings

ROOT = Path(__file__).resolve().parents[3]
KEY = Ed25519PrivateKey.generate()


def sample_receipt(key: Ed25519PrivateKey = KEY) -> dict[str, Any]:
    return {
        "format": receipts.FORMAT,
        "portal": "https://portal.example.fi",
        "message_id": "6f1b6c44-0d5e-4a36-9a55-2d1d9b1c1a11",
        "in_reply_to": None,
        "sender": "liisa@example.com",
        "recipients": ["ville@valtori.fi", "maija@example.fi"],
        "subject": 'Hakemus: liitteet – ÅÄÖ "lainaus" \\ kenoviiva',
        "sent_at": "2026-12-01T11:43:25Z",
        "attachments": [
            {"name": "raportti.pdf", "size": 25614, "sha256": "ab" * 32},
            {"name": "Äöå résumé.txt", "size": 6, "sha256": "cd" * 32},
        ],
        "key_fingerprint": receipts.fingerprint(key.public_key()),
    }


def changed(value: Any) -> Any:
    """Another value of the same kind."""
    if isinstance(value, bool) or value is None:
        return "6f1b6c44-0d5e-4a36-9a55-2d1d9b1c1a12"
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        return value[:-1] + ("x" if value[-1:] != "x" else "y")
    if isinstance(value, list):
        return value[:-1]
    raise AssertionError(value)


def tampered_copies(receipt: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(what changed, receipt) for every field and every field of every attachment."""
    copies = []
    for field in sorted(receipt):
        other = copy.deepcopy(receipt)
        other[field] = changed(other[field])
        copies.append((field, other))
    for index, attachment in enumerate(receipt["attachments"]):
        for field in sorted(attachment):
            other = copy.deepcopy(receipt)
            other["attachments"][index][field] = changed(attachment[field])
            copies.append((f"attachments[{index}].{field}", other))
    other = copy.deepcopy(receipt)
    other["recipients"].append("mallory@example.fi")
    copies.append(("a recipient added", other))
    other = copy.deepcopy(receipt)
    other["recipients"].reverse()
    copies.append(("the recipients reordered", other))
    return copies


def with_receipt(document: str, receipt: dict[str, Any]) -> str:
    """``document`` with its receipt replaced and its signature kept."""
    signature = json.loads(document)["signature"]
    return receipts.canonical({"receipt": receipt, "signature": signature}).decode("utf-8")


# -- canonical form and signing ----------------------------------------------------------------


def test_canonical_form_sorts_keys_has_no_spaces_and_writes_utf8_unescaped():
    assert receipts.canonical({"b": [1, "ä"], "a": {"d": None, "c": "x y"}}) == (
        '{"a":{"c":"x y","d":null},"b":[1,"ä"]}'.encode()
    )


def test_canonical_form_is_stable_whatever_order_the_fields_come_in():
    receipt = sample_receipt()
    reversed_order = dict(reversed(list(receipt.items())))

    assert receipts.canonical(reversed_order) == receipts.canonical(receipt)
    assert receipts.canonical(json.loads(receipts.canonical(receipt))) == receipts.canonical(
        receipt
    )


def test_signed_document_is_canonical_json_with_the_receipt_bytes_as_they_were_signed():
    receipt = sample_receipt()

    document = receipts.sign(receipt, KEY)

    signed = receipts.canonical(receipt).decode("utf-8")
    assert document.startswith('{"receipt":' + signed + ',"signature":"')
    assert document.endswith('"}')
    assert receipts.canonical(json.loads(document)).decode("utf-8") == document
    signature = base64.b64decode(json.loads(document)["signature"])
    KEY.public_key().verify(signature, signed.encode("utf-8"))  # raises if it does not hold


def test_a_signed_receipt_verifies_and_gives_the_receipt_back():
    receipt = sample_receipt()

    assert receipts.verify(receipts.sign(receipt, KEY), KEY.public_key()) == receipt


def test_reformatting_the_file_keeps_it_valid_since_the_content_is_the_same():
    document = receipts.sign(sample_receipt(), KEY)
    pretty = json.dumps(json.loads(document), indent=2, ensure_ascii=True) + "\n"

    assert receipts.verify(pretty, KEY.public_key())["subject"] == sample_receipt()["subject"]


@pytest.mark.parametrize(
    "receipt", [pytest.param(other, id=what) for what, other in tampered_copies(sample_receipt())]
)
def test_changing_any_field_after_signing_makes_the_receipt_invalid(receipt):
    document = with_receipt(receipts.sign(sample_receipt(), KEY), receipt)

    with pytest.raises(receipts.InvalidReceipt):
        receipts.verify(document, KEY.public_key())


def test_changing_one_byte_of_the_subject_in_the_file_makes_it_invalid():
    document = receipts.sign(sample_receipt(), KEY)
    tampered = document.replace("Hakemus", "Hakemuz", 1)
    assert tampered != document

    with pytest.raises(receipts.InvalidReceipt, match="signature does not match"):
        receipts.verify(tampered, KEY.public_key())


def test_a_changed_signature_is_invalid():
    document = json.loads(receipts.sign(sample_receipt(), KEY))
    raw = bytearray(base64.b64decode(document["signature"]))
    raw[10] ^= 0x01
    document["signature"] = base64.b64encode(bytes(raw)).decode("ascii")

    with pytest.raises(receipts.InvalidReceipt, match="signature does not match"):
        receipts.verify(json.dumps(document), KEY.public_key())


def test_a_receipt_signed_with_another_key_is_invalid():
    other = Ed25519PrivateKey.generate()

    # Signed by another key, naming it: this key does not confirm it.
    with pytest.raises(receipts.InvalidReceipt, match="names the key"):
        receipts.verify(receipts.sign(sample_receipt(other), other), KEY.public_key())
    # Signed by another key while naming this one: the signature fails.
    with pytest.raises(receipts.InvalidReceipt, match="signature does not match"):
        receipts.verify(receipts.sign(sample_receipt(KEY), other), KEY.public_key())


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (b"\xff\xfe not json", "not JSON"),
        ("[1, 2]", "expected the members"),
        ('{"receipt": {}, "signature": "", "extra": 1}', "expected the members"),
        ('{"receipt": "x", "signature": "AA=="}', "must be an object"),
        ('{"receipt": {}, "signature": "not base64!"}', "not base64"),
        ('{"receipt": {}, "signature": "AAAA"}', "length"),
        ('{"receipt": {"format": "other/9"}, "signature": "' + "A" * 86 + '=="}', "format"),
    ],
)
def test_what_is_not_a_receipt_is_refused_with_a_reason(document, reason):
    with pytest.raises(receipts.InvalidReceipt, match=reason):
        receipts.verify(document, KEY.public_key())


def test_a_receipt_with_a_field_removed_or_added_is_refused():
    document = json.loads(receipts.sign(sample_receipt(), KEY))
    removed = copy.deepcopy(document)
    del removed["receipt"]["in_reply_to"]
    added = copy.deepcopy(document)
    added["receipt"]["note"] = "added later"

    for changed_document in (removed, added):
        with pytest.raises(receipts.InvalidReceipt, match="fields"):
            receipts.verify(json.dumps(changed_document), KEY.public_key())


def test_summary_names_every_field_and_attachment():
    text = receipts.summary(sample_receipt())

    for value in (
        "liisa@example.com",
        "ville@valtori.fi, maija@example.fi",
        "2026-12-01T11:43:25Z",
    ):
        assert value in text
    assert "Äöå résumé.txt (6 bytes, SHA-256 " + "cd" * 32 + ")" in text
    assert "attachments: 2" in text
    assert "in reply to" not in text


# -- the key -----------------------------------------------------------------------------------


def test_the_key_is_generated_once_into_the_data_directory_and_kept_private(tmp_path):
    settings = plain_settings(tmp_path / "data")

    first = receipts.startup_key(settings)
    second = receipts.startup_key(settings)

    path = tmp_path / "data" / "receipt-signing.key"
    assert settings.signing_key_path == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert receipts.fingerprint(first.public_key()) == receipts.fingerprint(second.public_key())
    assert [p.name for p in path.parent.iterdir() if "receipt" in p.name] == [path.name]


def test_workers_starting_together_end_up_with_one_key(tmp_path):
    settings = plain_settings(tmp_path / "data")
    barrier = threading.Barrier(8)
    found: list[str] = []

    def start() -> None:
        barrier.wait()
        found.append(receipts.fingerprint(receipts.startup_key(settings).public_key()))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(found) == 8
    assert len(set(found)) == 1
    leftovers = [p.name for p in (tmp_path / "data").iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_a_configured_key_file_is_used_and_never_generated(tmp_path):
    from cryptography.hazmat.primitives import serialization

    key = Ed25519PrivateKey.generate()
    path = tmp_path / "agency.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    settings = plain_settings(tmp_path / "data", signing_key_file=str(path))

    loaded = receipts.startup_key(settings)

    assert receipts.fingerprint(loaded.public_key()) == receipts.fingerprint(key.public_key())
    assert not (tmp_path / "data" / "receipt-signing.key").exists()


def test_a_configured_key_file_that_is_missing_stops_start_up_naming_the_variable(tmp_path):
    settings = plain_settings(tmp_path / "data", signing_key_file=str(tmp_path / "gone.pem"))

    with pytest.raises(ConfigError, match=r"PORTAL_SIGNING_KEY_FILE: .*gone\.pem does not exist"):
        receipts.startup_key(settings)
    assert not (tmp_path / "gone.pem").exists()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"not a key", "no unencrypted private key"),
        (
            receipts.public_pem(
                KEY.public_key()
            ).encode(),  # a public key where a private one belongs
            "no unencrypted private key",
        ),
    ],
)
def test_a_key_file_without_an_ed25519_private_key_stops_start_up(tmp_path, content, reason):
    path = tmp_path / "bad.pem"
    path.write_bytes(content)
    settings = plain_settings(tmp_path / "data", signing_key_file=str(path))

    with pytest.raises(ConfigError, match=f"PORTAL_SIGNING_KEY_FILE: .*{reason}"):
        receipts.startup_key(settings)


def test_a_key_of_another_algorithm_is_refused(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    path = tmp_path / "ec.pem"
    path.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )

    with pytest.raises(receipts.ReceiptKeyError, match="another kind of key than Ed25519"):
        receipts.load_private_key(path)
    with pytest.raises(receipts.ReceiptKeyError, match="another kind of key than Ed25519"):
        receipts.load_public_key(path)


def test_the_public_key_loads_from_the_published_pem_or_the_private_key_file(tmp_path):
    settings = plain_settings(tmp_path / "data")
    key = receipts.startup_key(settings)
    published = tmp_path / "published.pem"
    published.write_text(receipts.public_pem(key.public_key()))

    expected = receipts.fingerprint(key.public_key())
    assert receipts.fingerprint(receipts.load_public_key(published)) == expected
    assert receipts.fingerprint(receipts.load_public_key(settings.signing_key_path)) == expected


# -- the README's recipes, for real ------------------------------------------------------------


def readme_block(marker: str) -> str:
    """The fenced code block that follows ``<!-- marker -->`` in the README."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(rf"<!-- {re.escape(marker)} -->\s*```\w*\n(.*?)```", text, re.S)
    assert found, f"README.md has no code block after <!-- {marker} -->"
    return found.group(1)


@pytest.fixture
def receipt_files(tmp_path) -> Path:
    """receipt.json and the published key as the README's reader has them."""
    (tmp_path / "receipt.json").write_text(receipts.sign(sample_receipt(), KEY), encoding="utf-8")
    (tmp_path / "sinetti-receipt-key.pem").write_text(receipts.public_pem(KEY.public_key()))
    return tmp_path


def run_in(directory: Path, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=directory, capture_output=True, text=True, check=False, env=os.environ.copy()
    )


def test_the_readmes_python_recipe_verifies_a_receipt_and_rejects_a_tampered_one(receipt_files):
    recipe = readme_block("receipt-python")

    valid = run_in(receipt_files, sys.executable, "-c", recipe)
    (receipt_files / "receipt.json").write_text(
        (receipt_files / "receipt.json").read_text().replace("25614", "25615")
    )
    tampered = run_in(receipt_files, sys.executable, "-c", recipe)

    assert valid.returncode == 0, valid.stderr
    assert "valid" in valid.stdout
    assert tampered.returncode != 0
    assert "InvalidSignature" in tampered.stderr


def test_the_readmes_openssl_recipe_verifies_a_receipt_and_rejects_a_tampered_one(receipt_files):
    assert shutil.which("openssl"), "install OpenSSL 3 (Debian's openssl)"
    recipe = readme_block("receipt-openssl")

    valid = run_in(receipt_files, "sh", "-ec", recipe)
    (receipt_files / "receipt.json").write_text(
        (receipt_files / "receipt.json").read_text().replace("liisa@", "liisb@")
    )
    tampered = run_in(receipt_files, "sh", "-ec", recipe)

    assert valid.returncode == 0, valid.stdout + valid.stderr
    assert "Signature Verified Successfully" in valid.stdout
    assert tampered.returncode != 0
    assert "Signature Verification Failure" in tampered.stdout + tampered.stderr


def test_the_readmes_openssl_recipe_holds_for_a_file_saved_with_a_final_newline(receipt_files):
    path = receipt_files / "receipt.json"
    path.write_text(path.read_text() + "\r\n")

    result = run_in(receipt_files, "sh", "-ec", readme_block("receipt-openssl"))

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_fingerprint_is_what_openssl_prints_for_the_published_key(receipt_files):
    assert shutil.which("openssl"), "install OpenSSL 3 (Debian's openssl)"

    result = run_in(receipt_files, "sh", "-ec", readme_block("receipt-fingerprint"))

    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == receipts.fingerprint(KEY.public_key()).removeprefix(
        "sha256:"
    )
