"""portal.services.sealing: AES-GCM with a key derived from the secret key by HKDF."""

from __future__ import annotations

import base64

import pytest

from portal.services.sealing import PREFIX, Sealer, SealError, is_sealed

KEY = "a-secret-key-of-the-portal-" + "k" * 32


def test_sealed_text_opens_again_with_the_same_key_and_context():
    sealer = Sealer(KEY)

    sealed = sealer.seal("PIN 123456 – ääkköset", "outbox text sms +358400123456")

    assert sealed.startswith(PREFIX) and "123456" not in sealed
    assert Sealer(KEY).open(sealed, "outbox text sms +358400123456") == "PIN 123456 – ääkköset"


def test_another_secret_key_does_not_open_it():
    sealed = Sealer(KEY).seal("PIN 123456", "ctx")

    with pytest.raises(SealError):
        Sealer(KEY + "x").open(sealed, "ctx")


def test_another_purpose_derives_another_key():
    sealed = Sealer(KEY, purpose=b"sinetti outbox v1").seal("PIN 123456", "ctx")

    with pytest.raises(SealError):
        Sealer(KEY, purpose=b"sinetti something else v1").open(sealed, "ctx")


def test_another_context_does_not_open_it():
    sealed = Sealer(KEY).seal("link", "outbox text email a@example.fi")

    with pytest.raises(SealError):
        Sealer(KEY).open(sealed, "outbox text email b@example.fi")


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage"])
def test_tampered_value_is_refused(damage):
    sealed = Sealer(KEY).seal("link", "ctx")
    raw = bytearray(base64.urlsafe_b64decode(sealed[len(PREFIX) :]))
    if damage == "flip":
        raw[-1] ^= 1
        tampered = PREFIX + base64.urlsafe_b64encode(bytes(raw)).decode()
    elif damage == "truncate":
        tampered = PREFIX + base64.urlsafe_b64encode(bytes(raw[:10])).decode()
    else:
        tampered = PREFIX + "not base64 at all!"

    with pytest.raises(SealError):
        Sealer(KEY).open(tampered, "ctx")


def test_text_that_was_never_sealed_passes_through():
    assert Sealer(KEY).open("", "ctx") == ""
    assert Sealer(KEY).open("queued before sealing existed", "ctx") == (
        "queued before sealing existed"
    )
    assert not is_sealed("") and not is_sealed(None) and is_sealed(PREFIX + "x")
