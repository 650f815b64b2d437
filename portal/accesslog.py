"""Hypercorn's access log without the secrets that travel in addresses.

A personal link (``/s/<token>``) signs a sender in and a message link (``/m/<token>``) opens
a message: both are credentials, and an access log is read, shipped and kept by far more
people and systems than the database. ``sinetti serve --access-log`` therefore logs through
:class:`RedactingLogger`, which writes ``/s/[redacted]…`` and ``/m/[redacted]…`` wherever a
value of a log line could carry one: the path, the query string, the referer, any header.

Hypercorn also offers every environment variable to the log format (``%({name}e)s``): that
would put ``PORTAL_SECRET_KEY`` or the SMTP password one format string away from a log file,
so those atoms are left out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from hypercorn.logging import AccessLogAtoms, Logger

if TYPE_CHECKING:
    from hypercorn.typing import ResponseSummary, WWWScope

REDACTED = "[redacted]"
# ``/s/`` or ``/m/``, plain or percent-encoded (``%2Fs%2F`` in a query string), then the token
# up to the next separator.
_TOKEN = re.compile(r"((?:/|%2[fF])[sm](?:/|%2[fF]))[^/?#&;%\s\"']+")
# Headers whose whole value is a credential.
_SECRET_HEADERS = ("{cookie}i", "{authorization}i", "{set-cookie}o", "{proxy-authorization}i")


def redact(value: str) -> str:
    """``value`` with the token of every personal and message link replaced."""
    return _TOKEN.sub(rf"\1{REDACTED}", value)


class RedactedAtoms(AccessLogAtoms):
    def __init__(
        self, request: WWWScope, response: ResponseSummary | None, request_time: float
    ) -> None:
        super().__init__(request, response, request_time)
        for key in [key for key in self if key.endswith("}e")]:
            del self[key]
        for key, value in self.items():
            if isinstance(value, str):
                self[key] = REDACTED if key in _SECRET_HEADERS else redact(value)


class RedactingLogger(Logger):
    """Hypercorn's logger (``config.logger_class``) with :class:`RedactedAtoms`."""

    def atoms(
        self, request: WWWScope, response: ResponseSummary | None, request_time: float
    ) -> Mapping[str, str]:
        return RedactedAtoms(request, response, request_time)
