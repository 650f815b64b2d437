"""portal.keys.cache: entries expire after their time, the oldest used goes first when full,
and a forgotten key is gone."""

from __future__ import annotations

import uuid

from portal.keys import cache as key_cache
from portal.keys.cache import KeyCache


def test_a_key_is_kept_until_its_time_and_then_gone(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(key_cache.time, "monotonic", lambda: now[0])
    keys, message = KeyCache(ttl=60), uuid.uuid4()

    keys.put(message, b"k" * 32)
    now[0] += 60
    assert keys.get(message) == b"k" * 32
    now[0] += 0.001
    assert keys.get(message) is None and len(keys) == 0


def test_the_least_recently_used_key_goes_first_when_full():
    keys = KeyCache(size=2)
    first, second, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    keys.put(first, b"1")
    keys.put(second, b"2")
    assert keys.get(first) == b"1"  # used: second is now the oldest

    keys.put(third, b"3")

    assert (keys.get(first), keys.get(second), keys.get(third)) == (b"1", None, b"3")


def test_a_forgotten_key_is_gone():
    keys, message = KeyCache(), uuid.uuid4()
    keys.put(message, b"k")
    keys.forget(message)
    keys.forget(message)  # twice is fine
    assert keys.get(message) is None
