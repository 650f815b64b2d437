"""The JSON body that announces a chunked upload: ``{"filename", "size", "type", "fingerprint"}``.

The compose page's script sends it, but anyone can send anything, and a JSON parser handed
hostile bytes fails in many ways: undecodable bytes, lone surrogates (``"\\ud800"`` parses,
then cannot be stored or encoded), nesting deep enough to exhaust the recursion limit, numbers
of thousands of digits, ``NaN``, duplicate keys, and ``true`` where a number belongs (``bool``
is an ``int`` in Python). :func:`parse_announcement` checks all of it before anything is
stored and answers with an :class:`Announcement` or a :class:`BadAnnouncement`, never with
another exception, so a bad body is a 400 with a message, not a 500.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

from portal.i18n import _

MAX_BODY_BYTES = 16 * 1024
#: The object itself is depth 1; nothing the script sends nests at all.
MAX_DEPTH = 4
#: Sizes must be exact in a JavaScript number (the script's ``file.size``).
MAX_SIZE = 2**53 - 1
MAX_FILENAME = 1024
MAX_TYPE = 255
MAX_FINGERPRINT = 400
DEFAULT_FILENAME = "file"

_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_MEDIA_TYPE = re.compile(r"[\x20-\x7e]*")  # printable ASCII, as browsers report file types


@dataclasses.dataclass(frozen=True, slots=True)
class Announcement:
    filename: str
    size: int
    content_type: str
    fingerprint: str


class BadAnnouncement(Exception):
    """The body is not a valid announcement. ``reason`` is a short code for logs and tests;
    :attr:`message` is what the person is told, in their language."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    @property
    def message(self) -> str:
        if self.reason == "filename-long":
            return _("The file name is too long. Rename the file and choose it again.")
        if self.reason == "filename-characters":
            return _(
                "The file name contains characters that cannot be used. Rename the file and "
                "choose it again."
            )
        return _("The file could not be read.")


def parse_announcement(body: bytes) -> Announcement:
    """The announcement in ``body`` (the raw request body), or :class:`BadAnnouncement`."""
    if len(body) > MAX_BODY_BYTES:
        raise BadAnnouncement("too-large")
    try:
        text = body.decode("utf-8")  # strict: also refuses encoded surrogates
    except UnicodeDecodeError:
        raise BadAnnouncement("encoding") from None
    if _nesting(text) > MAX_DEPTH:
        raise BadAnnouncement("nesting")  # before the parser recurses
    try:
        data = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except (ValueError, RecursionError):  # JSONDecodeError, 5000-digit ints, NaN, duplicates
        raise BadAnnouncement("syntax") from None
    if not isinstance(data, dict):
        raise BadAnnouncement("shape")
    _check_strings(data)
    return Announcement(
        filename=_filename(data.get("filename")),
        size=_size(data.get("size")),
        content_type=_text(data.get("type"), MAX_TYPE, "type"),
        fingerprint=_text(data.get("fingerprint"), MAX_FINGERPRINT, "fingerprint"),
    )


def _nesting(text: str) -> int:
    """The deepest ``[``/``{`` nesting outside strings (malformed text is the parser's job)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _value in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate key")  # parsers disagree on which one wins
    return dict(pairs)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _check_strings(value: Any) -> None:
    """Every string (keys too, at any depth) must be valid Unicode: ``"\\ud800"`` is not."""
    items: list[Any] = [value]
    while items:
        item = items.pop()
        if isinstance(item, dict):
            items.extend(item.keys())
            items.extend(item.values())
        elif isinstance(item, list):
            items.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise BadAnnouncement("surrogate") from None


def _size(value: Any) -> int:
    # bool is a subclass of int: ``"size": true`` must not announce a file of one byte.
    if type(value) is not int or not 0 <= value <= MAX_SIZE:
        raise BadAnnouncement("size")
    return value


def _filename(value: Any) -> str:
    if value is None or value == "":
        return DEFAULT_FILENAME
    if not isinstance(value, str):
        raise BadAnnouncement("filename")
    if len(value) > MAX_FILENAME:
        raise BadAnnouncement("filename-long")
    if _CONTROLS.search(value):
        raise BadAnnouncement("filename-characters")
    return value


def _text(value: Any, limit: int, field: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > limit:
        raise BadAnnouncement(field)
    if field == "type" and not _MEDIA_TYPE.fullmatch(value):
        raise BadAnnouncement(field)
    if _CONTROLS.search(value):
        raise BadAnnouncement(field)  # a NUL cannot even be stored in PostgreSQL
    return value
