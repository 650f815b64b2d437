"""portal.services.announcement: the JSON body announcing an upload, checked before anything
is stored; hostile bodies become BadAnnouncement, never another exception."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.i18n import locale_context
from portal.services.announcement import (
    MAX_BODY_BYTES,
    MAX_SIZE,
    Announcement,
    BadAnnouncement,
    parse_announcement,
)

GOOD = {"filename": "hakemus.pdf", "size": 1234, "type": "application/pdf", "fingerprint": "f|1"}


def body(**changes: object) -> bytes:
    return json.dumps({**GOOD, **changes}).encode()


def test_what_the_script_sends_is_an_announcement():
    assert parse_announcement(body()) == Announcement("hakemus.pdf", 1234, "application/pdf", "f|1")


def test_optional_fields_have_defaults():
    assert parse_announcement(b'{"size": 0}') == Announcement("file", 0, "", "")
    assert parse_announcement(b'{"size": 5, "filename": "", "type": null}').filename == "file"


def test_unknown_keys_are_ignored():
    assert parse_announcement(body(lastModified=123, extra={"a": [1]})).size == 1234


def test_non_ascii_names_and_the_largest_exact_size_are_fine():
    parsed = parse_announcement(body(filename="Päätös 2026 – 決定.pdf", size=MAX_SIZE))

    assert parsed.filename == "Päätös 2026 – 決定.pdf"
    assert parsed.size == MAX_SIZE


def test_escaped_non_ascii_is_decoded():
    assert parse_announcement(b'{"size": 1, "filename": "\\u00e4.txt"}').filename == "ä.txt"


NESTED = b'{"size": 1, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        pytest.param(b"", "syntax", id="empty"),
        pytest.param(b"   ", "syntax", id="blank"),
        pytest.param(b"{", "syntax", id="truncated"),
        pytest.param(b"{'size': 1}", "syntax", id="single-quotes"),
        pytest.param(b'{"size": 1,}', "syntax", id="trailing-comma"),
        pytest.param(b'{"size": 1} {"size": 2}', "syntax", id="two-documents"),
        pytest.param(b"\xef\xbb\xbf" + body(), "syntax", id="utf8-bom"),
        pytest.param(b'{"size": 1, "filename": "\xff\xfe.pdf"}', "encoding", id="invalid-utf8"),
        pytest.param(b'{"size": 1, "filename": "\xc3"}', "encoding", id="truncated-utf8"),
        pytest.param(b'{"size": 1, "filename": "\xed\xa0\x80"}', "encoding", id="utf8-surrogate"),
        pytest.param(b'{"size": 1, "filename": "\xc0\xaf"}', "encoding", id="overlong-utf8"),
        pytest.param(body().decode().encode("utf-16"), "encoding", id="utf-16"),
        pytest.param(b'{"size": 1, "filename": "\\ud800"}', "surrogate", id="lone-surrogate"),
        pytest.param(b'{"size": 1, "fingerprint": "\\udfff"}', "surrogate", id="low-surrogate"),
        pytest.param(b'{"size": 1, "\\ud800": 1}', "surrogate", id="surrogate-key"),
        pytest.param(b'{"size": 1, "x": ["\\ud83d"]}', "surrogate", id="surrogate-in-list"),
        pytest.param(NESTED, "too-large", id="deeply-nested-large"),
        pytest.param(b'{"size": 1, "x": [[[[1]]]]}', "nesting", id="five-levels"),
        pytest.param(b"[" * 5000 + b"]" * 5000, "nesting", id="nested-lists"),
        pytest.param(b'{"a":' * 2000 + b"1" + b"}" * 2000, "nesting", id="nested-objects"),
        pytest.param(b"[]", "shape", id="list"),
        pytest.param(b'"size"', "shape", id="string"),
        pytest.param(b"null", "shape", id="null"),
        pytest.param(b"1234", "shape", id="number"),
        pytest.param(b'{"filename": "a"}', "size", id="size-missing"),
        pytest.param(body(size=True), "size", id="size-true"),
        pytest.param(body(size=False), "size", id="size-false"),
        pytest.param(body(size=None), "size", id="size-null"),
        pytest.param(body(size="1234"), "size", id="size-string"),
        pytest.param(body(size=12.0), "size", id="size-float"),
        pytest.param(body(size=1.5), "size", id="size-fraction"),
        pytest.param(body(size=-1), "size", id="size-negative"),
        pytest.param(body(size=2**53), "size", id="size-2-53"),
        pytest.param(body(size=10**30), "size", id="size-huge"),
        pytest.param(b'{"size": 1e400}', "size", id="size-infinite-float"),
        pytest.param(b'{"size": NaN}', "syntax", id="size-nan"),
        pytest.param(b'{"size": Infinity}', "syntax", id="size-infinity"),
        pytest.param(b'{"size": ' + b"9" * 5000 + b"}", "syntax", id="size-5000-digits"),
        pytest.param(body(size=[1]), "size", id="size-list"),
        pytest.param(b'{"size": 1, "size": 2}', "syntax", id="duplicate-key"),
        pytest.param(body(filename=123), "filename", id="filename-number"),
        pytest.param(body(filename=["a"]), "filename", id="filename-list"),
        pytest.param(body(filename=True), "filename", id="filename-true"),
        pytest.param(body(filename="a" * 1025), "filename-long", id="filename-1025"),
        pytest.param(body(filename="a\x00.pdf"), "filename-characters", id="filename-nul"),
        pytest.param(body(filename="a\n.pdf"), "filename-characters", id="filename-newline"),
        pytest.param(body(filename="a\x1b[31m.pdf"), "filename-characters", id="filename-escape"),
        pytest.param(body(filename="a\x85.pdf"), "filename-characters", id="filename-c1"),
        pytest.param(body(type=5), "type", id="type-number"),
        pytest.param(body(type="x" * 256), "type", id="type-256"),
        pytest.param(body(type="text/plain\r\nX-Evil: 1"), "type", id="type-crlf"),
        pytest.param(body(type="täxt/plain"), "type", id="type-non-ascii"),
        pytest.param(body(fingerprint={"a": 1}), "fingerprint", id="fingerprint-object"),
        pytest.param(body(fingerprint="f" * 401), "fingerprint", id="fingerprint-401"),
        pytest.param(body(fingerprint="a\x00b"), "fingerprint", id="fingerprint-nul"),
        pytest.param(b'{"size": 1, "x": "' + b"a" * MAX_BODY_BYTES + b'"}', "too-large", id="16k"),
    ],
)
def test_hostile_bodies_are_refused_with_a_reason(raw, reason):
    with pytest.raises(BadAnnouncement) as refused:
        parse_announcement(raw)

    assert refused.value.reason == reason


def test_limits_are_inclusive():
    parsed = parse_announcement(body(filename="a" * 1024, type="t" * 255, fingerprint="f" * 400))

    assert (len(parsed.filename), len(parsed.content_type), len(parsed.fingerprint)) == (
        1024,
        255,
        400,
    )
    assert parse_announcement(b'{"size": 1, "x": [[[1]]]}').size == 1  # four levels


def test_a_body_of_exactly_the_limit_is_read():
    raw = body(pad="")
    raw = body(pad="p" * (MAX_BODY_BYTES - len(raw)))

    assert len(raw) == MAX_BODY_BYTES
    assert parse_announcement(raw).size == 1234


def test_brackets_inside_strings_do_not_count_as_nesting():
    assert parse_announcement(body(filename='[[[[[{{{{{"]].pdf')).filename == '[[[[[{{{{{"]].pdf'


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        ("filename-long", "file name is too long"),
        ("filename-characters", "characters that cannot be used"),
        ("syntax", "could not be read"),
        ("surrogate", "could not be read"),
    ],
)
def test_the_message_says_what_the_person_can_do(reason, words):
    with locale_context("en"):
        assert words in BadAnnouncement(reason).message


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
announcement_like = st.fixed_dictionaries(
    {},
    optional={
        "filename": json_values,
        "size": st.one_of(st.integers(min_value=-5, max_value=2**60), json_values),
        "type": json_values,
        "fingerprint": json_values,
    },
)


@given(st.binary(max_size=300))
def test_any_bytes_are_an_announcement_or_refused(raw):
    try:
        parsed = parse_announcement(raw)
    except BadAnnouncement:
        return
    assert isinstance(parsed, Announcement)


@given(st.one_of(announcement_like, json_values))
def test_any_json_value_is_an_announcement_or_refused_and_announcements_are_sound(value):
    raw = json.dumps(value).encode("utf-8", "surrogatepass")
    try:
        parsed = parse_announcement(raw)
    except BadAnnouncement:
        return
    assert type(parsed.size) is int and 0 <= parsed.size <= MAX_SIZE
    for text in (parsed.filename, parsed.content_type, parsed.fingerprint):
        assert isinstance(text, str)
        text.encode("utf-8")
        assert "\x00" not in text
    assert parsed.filename


@given(st.text(max_size=300), st.integers(min_value=0, max_value=MAX_SIZE))
def test_any_printable_name_round_trips(name, size):
    name = "".join(char for char in name if char.isprintable() and char.encode("utf-8", "ignore"))
    raw = json.dumps({"filename": name, "size": size}).encode()

    parsed = parse_announcement(raw)

    assert parsed.size == size
    assert parsed.filename == (name or "file")
