"""Fixtures of the service tests."""

from .outbox_support import database  # noqa: F401 - the fixture, for every test module here
