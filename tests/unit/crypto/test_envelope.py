"""portal.crypto.envelope: a data key wrapped under a KEK opens only with that KEK, for the
same message, and unchanged."""

from __future__ import annotations

import os

import pytest

from portal.crypto.envelope import WRAPPED, KeyWrapper, UnwrapError, new_data_key

KEK = bytes(range(32))
MESSAGE = b"message 9f6c1e0a"


def test_a_wrapped_key_unwraps_to_the_same_key_and_does_not_contain_it():
    data_key = new_data_key()
    wrapped = KeyWrapper(KEK).wrap(data_key, MESSAGE)
    assert len(wrapped) == WRAPPED and data_key not in wrapped
    assert KeyWrapper(KEK).unwrap(wrapped, MESSAGE) == data_key


def test_wrapping_the_same_key_twice_gives_different_bytes():
    data_key = new_data_key()
    assert KeyWrapper(KEK).wrap(data_key, MESSAGE) != KeyWrapper(KEK).wrap(data_key, MESSAGE)


def test_another_kek_does_not_unwrap():
    wrapped = KeyWrapper(KEK).wrap(new_data_key(), MESSAGE)
    with pytest.raises(UnwrapError):
        KeyWrapper(os.urandom(32)).unwrap(wrapped, MESSAGE)


def test_a_wrapped_key_copied_to_another_message_does_not_unwrap():
    wrapped = KeyWrapper(KEK).wrap(new_data_key(), MESSAGE)
    with pytest.raises(UnwrapError):
        KeyWrapper(KEK).unwrap(wrapped, b"message 00000000")


@pytest.mark.parametrize("at", [0, 11, 12, WRAPPED - 1])
def test_a_changed_byte_does_not_unwrap(at):
    wrapped = bytearray(KeyWrapper(KEK).wrap(new_data_key(), MESSAGE))
    wrapped[at] ^= 0x80
    with pytest.raises(UnwrapError):
        KeyWrapper(KEK).unwrap(bytes(wrapped), MESSAGE)


def test_a_cut_wrapped_key_is_refused():
    wrapped = KeyWrapper(KEK).wrap(new_data_key(), MESSAGE)
    with pytest.raises(UnwrapError):
        KeyWrapper(KEK).unwrap(wrapped[:-1], MESSAGE)


@pytest.mark.parametrize("length", [0, 16, 31, 33])
def test_keys_of_the_wrong_length_are_refused(length):
    with pytest.raises(ValueError):
        KeyWrapper(os.urandom(length))
    with pytest.raises(ValueError):
        KeyWrapper(KEK).wrap(os.urandom(length), MESSAGE)
