"""Hostile input never reaches a 500 (issue 8): a table of requests an attacker with an HTTP
client can send to every form and endpoint — empty, over-long and control-character fields,
invalid UTF-8, malformed JSON, source-routed and foreign recipients, wrong methods, missing
CSRF tokens, unknown and tampered tokens and ids, hostile paths.

Each case gets a 4xx with a clear message in the user's language (English here: HTML pages
carry ``<html lang="en">``, the upload API a JSON ``error``), nothing is stored (no new rows
of any kind, no stored files, no upload moved on; a compose or reply form may keep its draft,
as documented, but sends nothing) and nothing is logged as an error or with a traceback.
"""

from __future__ import annotations

import dataclasses
import html
import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urljoin, urlsplit

import pytest

from portal.models import Attachment, Message, MessageStatus, Upload

from .helpers import (
    csrf_of,
    multipart,
    newest_link,
    open_message,
    page_text,
    row_counts,
    send_message,
    stored_files,
    token_of,
)

SENDER = "liisa@example.com"
PLAIN = "ville.virkamies@valtori.fi"
CSRF_HEADER = "X-CSRF-Token"
FORM = "application/x-www-form-urlencoded"

# -- what the case needs, and how its request is made ---------------------------------------


@dataclasses.dataclass
class World:
    """What was set up before the hostile request: tokens and ids it can use or tamper with."""

    csrf: str = ""
    s: str = ""  # the sender's personal-link token
    m: str = ""  # a recipient's token (their message is open in this browser)
    upload: str = ""  # an unfinished upload of the sender's draft
    attachment: int = 0  # an attachment of the sent message

    def format(self, path: str) -> str:
        return path.format(
            s=self.s,
            m=self.m,
            upload=self.upload,
            attachment=self.attachment,
            s_tampered=tampered(self.s),
            m_tampered=tampered(self.m),
            upload_tampered=tampered(self.upload),
        )


def tampered(token: str) -> str:
    """The same token with its last character changed (still the right alphabet)."""
    if not token:
        return token
    last = token[-1]
    return token[:-1] + ("b" if last == "a" else "a")


Body = Callable[[World], tuple[bytes | None, dict[str, str]]]


def no_body(world: World) -> tuple[bytes | None, dict[str, str]]:
    return None, {}


def form(fields: dict[str, str] | None = None, *, csrf: str | None = "session") -> Body:
    """A urlencoded form, with the session's CSRF token unless ``csrf`` says otherwise."""

    def build(world: World) -> tuple[bytes | None, dict[str, str]]:
        pairs = dict(fields or {})
        if csrf is not None:
            pairs = {"csrf_token": world.csrf if csrf == "session" else csrf, **pairs}
        return urlencode(pairs).encode(), {"Content-Type": FORM}

    return build


def raw_form(raw: bytes, *, content_type: str = FORM) -> Body:
    """Bytes as given after the session's CSRF field (invalid UTF-8, broken encodings)."""

    def build(world: World) -> tuple[bytes | None, dict[str, str]]:
        return f"csrf_token={world.csrf}&".encode() + raw, {"Content-Type": content_type}

    return build


def with_csrf_header(world: World, csrf: str | None) -> dict[str, str]:
    if csrf is None:
        return {}
    return {CSRF_HEADER: world.csrf if csrf == "session" else csrf}


def json_body(
    raw: bytes, *, csrf: str | None = "session", content_type: str = "application/json"
) -> Body:
    def build(world: World) -> tuple[bytes | None, dict[str, str]]:
        return raw, {"Content-Type": content_type, **with_csrf_header(world, csrf)}

    return build


def announce(**changes: Any) -> Body:
    fields = {"filename": "hakemus.pdf", "size": 10, "type": "application/pdf", "fingerprint": "f"}
    return json_body(json.dumps({**fields, **changes}).encode())


def chunk(offset: str | None, data: bytes = b"x" * 10, *, csrf: str | None = "session") -> Body:
    def build(world: World) -> tuple[bytes | None, dict[str, str]]:
        headers = {"Content-Type": "application/octet-stream", **with_csrf_header(world, csrf)}
        if offset is not None:
            headers["Upload-Offset"] = offset
        return data, headers

    return build


COMPOSE_FIELDS = {
    "recipients": PLAIN,
    "subject": "Hakemus 2026/17",
    "body": "Hei,\nliitteenä hakemus.",
    "signature": "Liisa Laine",
    "action": "send",
}


def compose(*, csrf: str | None = "session", **changes: str) -> Body:
    """The compose (or reply) form as multipart, the CSRF field first, one field changed."""

    def build(world: World) -> tuple[bytes | None, dict[str, str]]:
        fields = [("csrf_token", world.csrf if csrf == "session" else csrf or "")]
        if csrf is None:
            fields = []
        fields += list({**COMPOSE_FIELDS, **changes}.items())
        body, content_type = multipart(fields)
        return body, {"Content-Type": content_type}

    return build


def compose_raw(field: str, raw: bytes) -> Body:
    """The compose (or reply) form with ``field`` holding raw bytes (invalid UTF-8)."""

    def build(world: World) -> tuple[bytes | None, dict[str, str]]:
        boundary = "hostile-boundary"
        fields = {key: value for key, value in COMPOSE_FIELDS.items() if key != field}
        body, content_type = multipart(
            [("csrf_token", world.csrf), *fields.items()], boundary=boundary
        )
        closing = f"--{boundary}--\r\n".encode()
        extra = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"\r\n\r\n'.encode()
            + raw
            + b"\r\n"
        )
        return body.removesuffix(closing) + extra + closing, {"Content-Type": content_type}

    return build


def multipart_raw(raw: bytes, content_type: str) -> Body:
    def build(world: World) -> tuple[bytes | None, dict[str, str]]:
        return raw, {"Content-Type": content_type}

    return build


def reply(**changes: str) -> Body:
    return compose(**{"body": "Kiitos.", **changes})


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    method: str
    path: str
    body: Body = no_body
    needs: str = "anon"  # anon | sender | upload | recipient
    status: int = 400
    kind: str = "html"  # html | json | any (html or json: the CSRF check answers before the API)
    words: str | tuple[str, ...] = ""  # English words the answer must contain (one of them)
    draft_kept: bool = False  # a compose/reply form keeps what was typed in its draft


# Words of the pages and messages the cases expect.
CSRF_WORDS = "Your session has expired"
NOT_ALLOWED = "This page cannot be opened this way."
NOT_FOUND = "Page not found"
LINK_INVALID = "The link is not valid"
INVALID_EMAIL = "Enter your e-mail address in the form name@example.com."
TOO_LARGE = "What you sent is too large."
FILE_UNREADABLE = "The file could not be read."
UPLOAD_GONE = "This upload no longer exists."
BAD_CHARACTERS = "contains characters that cannot be used."
FORM_UNREADABLE = "The form could not be read."

LONG_TOKEN = "A" * 5000
TOKEN_VARIANTS = [
    ("unknown", "x" * 43),
    ("too-long", LONG_TOKEN),
    ("non-ascii", "äöå" * 15),
    ("dot-dot", ".."),
    ("encoded-dot-dot", "%2E%2E"),
    ("encoded-slash", "a%2Fb"),
    ("encoded-backslash", "a%5Cb"),
    ("encoded-nul", "a%00b"),
    ("emoji", "\U0001f600" * 10),
]


def register_cases() -> list[Case]:
    post = lambda id, body, **kw: Case("register-" + id, "POST", "/", body, **kw)  # noqa: E731
    bad = {"status": 400, "words": INVALID_EMAIL}
    return [
        post("empty", form({"email": ""}), **bad),
        post("blank", form({"email": "   "}), **bad),
        post("missing-field", form({}), **bad),
        post("over-long", form({"email": "a" * 5000 + "@example.com"}), **bad),
        post("over-long-domain", form({"email": "a@" + "b" * 300 + ".com"}), **bad),
        post("nul", form({"email": "liisa\x00@example.com"}), **bad),
        post("newline", form({"email": "liisa@example.com\nBcc: x@evil.example"}), **bad),
        post("crlf", form({"email": "liisa@example.com\r\nX: y"}), **bad),
        post("escape", form({"email": "li\x1b[2Jsa@example.com"}), **bad),
        post("rtl-override", form({"email": "liisa\u202e@example.com"}), **bad),
        post("zero-width", form({"email": "lii\u200bsa@example.com"}), **bad),
        post("percent", form({"email": "liisa%evil.example@example.com"}), **bad),
        post("bang", form({"email": "evil.example!liisa@example.com"}), **bad),
        post("quoted", form({"email": '"liisa laine"@example.com'}), **bad),
        post("source-route", form({"email": "@relay.example:liisa@example.com"}), **bad),
        post("domain-literal", form({"email": "liisa@[127.0.0.1]"}), **bad),
        post("two-at-signs", form({"email": "liisa@evil.example@example.com"}), **bad),
        post("invalid-utf8-encoded", raw_form(b"email=%FF%FEliisa%40example.com"), **bad),
        # Undecodable bytes make the whole form unreadable: its CSRF field is gone too.
        post("invalid-utf8-raw", raw_form(b"email=\xff\xfeliisa@example.com"),
             words=CSRF_WORDS),
        post("utf8-surrogate", raw_form(b"email=%ED%A0%80@example.com"), **bad),
        post("overlong-utf8", raw_form(b"email=%C0%AFliisa@example.com"), **bad),
        post("body-over-limit", form({"email": "a" * (2 * 1024 * 1024)}), status=413,
             words=TOO_LARGE),
        post("no-csrf", form({"email": SENDER}, csrf=None), words=CSRF_WORDS),
        post("wrong-csrf", form({"email": SENDER}, csrf="x" * 43), words=CSRF_WORDS),
        post("empty-csrf", form({"email": SENDER}, csrf=""), words=CSRF_WORDS),
        post("non-ascii-csrf", form({"email": SENDER}, csrf="ä" * 43), words=CSRF_WORDS),
        post("long-csrf", form({"email": SENDER}, csrf="x" * 100_000), words=CSRF_WORDS),
        post("json-body", json_body(b'{"email": "liisa@example.com"}', csrf=None),
             words=CSRF_WORDS),
        post("multipart-without-csrf",
             multipart_raw(*multipart([("email", SENDER)])), words=CSRF_WORDS),
    ]  # fmt: skip


def method_cases() -> list[Case]:
    cases = []
    for method, path, needs in [
        ("PUT", "/", "anon"),
        ("DELETE", "/", "anon"),
        ("PATCH", "/", "anon"),
        ("PUT", "/help", "anon"),
        ("POST", "/help", "anon"),
        ("DELETE", "/s/{s}", "sender"),
        ("PATCH", "/s/{s}", "sender"),
        ("PUT", "/compose", "sender"),
        ("DELETE", "/compose", "sender"),
        ("PATCH", "/compose", "sender"),
        ("GET", "/compose/cancel", "sender"),
        ("PUT", "/compose/cancel", "sender"),
        ("GET", "/compose/attachments/1/remove", "sender"),
        ("PATCH", "/compose/uploads", "sender"),
        ("GET", "/compose/uploads/{upload}/remove", "upload"),
        ("POST", "/sent", "sender"),
        ("DELETE", "/sent", "sender"),
        ("PUT", "/m/{m}", "recipient"),
        ("DELETE", "/m/{m}", "recipient"),
        ("GET", "/m/{m}/open", "recipient"),
        ("PATCH", "/m/{m}/code", "recipient"),
        ("GET", "/m/{m}/close", "recipient"),
        ("PUT", "/m/{m}/reply", "recipient"),
        ("POST", "/m/{m}/zip", "recipient"),
    ]:
        name = f"method-{method}-{path.replace('{', '').replace('}', '')}"
        cases.append(Case(name, method, path, needs=needs, status=405, words=NOT_ALLOWED))
    return cases


def token_cases() -> list[Case]:
    cases = []
    for name, token in TOKEN_VARIANTS:
        cases += [
            Case(f"s-get-{name}", "GET", f"/s/{token}", status=404, words=""),
            Case(f"m-get-{name}", "GET", f"/m/{token}", status=404, words=""),
            Case(f"m-open-{name}", "POST", f"/m/{token}/open", form(), status=404, words=""),
        ]
    cases += [
        Case("s-get-tampered", "GET", "/s/{s_tampered}", needs="sender", status=404,
             words=LINK_INVALID),
        Case("s-post-tampered", "POST", "/s/{s_tampered}", form(), needs="sender",
             status=404, words=LINK_INVALID),
        Case("s-post-unknown", "POST", "/s/" + "x" * 43, form(), status=404,
             words=LINK_INVALID),
        Case("s-post-too-long", "POST", "/s/" + LONG_TOKEN, form(), status=404,
             words=LINK_INVALID),
        Case("s-post-real-without-csrf", "POST", "/s/{s}", form(csrf=None), needs="sender",
             words=CSRF_WORDS),
        Case("m-get-tampered", "GET", "/m/{m_tampered}", needs="recipient", status=404,
             words=NOT_FOUND),
        Case("m-open-tampered", "POST", "/m/{m_tampered}/open", form(), needs="recipient",
             status=404, words=NOT_FOUND),
        Case("m-code-tampered", "POST", "/m/{m_tampered}/code", form({"code": "123456"}),
             needs="recipient", status=404, words=NOT_FOUND),
        Case("m-zip-tampered", "GET", "/m/{m_tampered}/zip", needs="recipient", status=404,
             words=NOT_FOUND),
        Case("m-reply-tampered", "GET", "/m/{m_tampered}/reply", needs="recipient", status=404,
             words=NOT_FOUND),
        Case("m-attachment-tampered", "GET", "/m/{m_tampered}/attachments/{attachment}",
             needs="recipient", status=404, words=NOT_FOUND),
        Case("m-open-real-without-csrf", "POST", "/m/{m}/open", form(csrf=None),
             needs="recipient", words=CSRF_WORDS),
        Case("m-close-without-csrf", "POST", "/m/{m}/close", form(csrf=None),
             needs="recipient", words=CSRF_WORDS),
        Case("m-resend-without-csrf", "POST", "/m/{m}/code/resend", form(csrf=None),
             needs="recipient", words=CSRF_WORDS),
    ]  # fmt: skip
    # An unknown /s/ token is an invalid link; a token that is no path segment (an encoded
    # slash) matches no page at all.
    return [
        dataclasses.replace(case, words=case.words or (LINK_INVALID, NOT_FOUND)) for case in cases
    ]


def id_cases() -> list[Case]:
    cases = []
    for name, value in [
        ("word", "abc"),
        ("negative", "-1"),
        ("huge", "9" * 30),
        ("int64-overflow", str(2**63)),
        ("float", "1.5"),
        ("encoded-slash", "1%2F2"),
        ("zero", "0"),
    ]:
        cases.append(
            Case(f"attachment-id-{name}", "GET", f"/m/{{m}}/attachments/{value}",
                 needs="recipient", status=404, words=NOT_FOUND)
        )  # fmt: skip
    # Removing an attachment that is not there leads back to the compose page (a second click
    # on Remove is no error); ids that are no number match no page.
    for name, value in [
        ("word", "abc"),
        ("negative", "-1"),
        ("float", "1.5"),
        ("encoded-slash", "1%2F2"),
    ]:
        cases.append(
            Case(f"remove-attachment-id-{name}", "POST", f"/compose/attachments/{value}/remove",
                 form(), needs="upload", status=404, words=NOT_FOUND)
        )  # fmt: skip
    for name, value in [
        ("word", "abc"),
        ("uuid-tampered", "00000000-0000-0000-0000-00000000000g"),
        ("dot-dot", ".."),
        ("long", "f" * 5000),
        ("non-ascii", "ää"),
    ]:
        cases.append(
            Case(f"sent-id-{name}", "GET", f"/sent/{value}", needs="sender", status=404,
                 words=NOT_FOUND)
        )  # fmt: skip
    return cases


def announce_cases() -> list[Case]:
    def case(id: str, body: Body, **kw: Any) -> Case:
        kw.setdefault("kind", "json")
        return Case("announce-" + id, "POST", "/compose/uploads", body, needs="sender", **kw)

    unreadable = {"words": FILE_UNREADABLE}
    return [
        case("empty", json_body(b""), **unreadable),
        case("not-json", json_body(b"filename=a&size=1"), **unreadable),
        case("truncated", json_body(b'{"filename": "a.pdf", "size": 1'), **unreadable),
        case("invalid-utf8", json_body(b'{"filename": "\xff\xfe.pdf", "size": 1}'),
             **unreadable),
        case("utf8-surrogate", json_body(b'{"filename": "\xed\xa0\x80", "size": 1}'),
             **unreadable),
        case("lone-surrogate", json_body(b'{"filename": "a\\ud800.pdf", "size": 1}'),
             **unreadable),
        case("surrogate-in-type", json_body(b'{"size": 1, "type": "\\udc00"}'), **unreadable),
        case("surrogate-key", json_body(b'{"size": 1, "\\ud800": 1}'), **unreadable),
        case("deeply-nested", json_body(b'{"size": 1, "x": ' + b"[" * 50_000 + b"]" * 50_000
             + b"}"), **unreadable),
        case("nested-objects", json_body(b'{"a":' * 5000 + b"1" + b"}" * 5000),
             **unreadable),
        case("list", json_body(b'[{"size": 1}]'), **unreadable),
        case("null", json_body(b"null"), **unreadable),
        case("size-true", announce(size=True), **unreadable),
        case("size-false", announce(size=False), **unreadable),
        case("size-string", announce(size="10"), **unreadable),
        case("size-float", announce(size=10.5), **unreadable),
        case("size-negative", announce(size=-1), **unreadable),
        case("size-huge", announce(size=10**40), **unreadable),
        case("size-2-63", announce(size=2**63), **unreadable),
        case("size-nan", json_body(b'{"size": NaN}'), **unreadable),
        case("size-5000-digits", json_body(b'{"size": ' + b"9" * 5000 + b"}"), **unreadable),
        case("size-missing", announce(size=None), **unreadable),
        case("duplicate-size", json_body(b'{"size": 1, "size": 2}'), **unreadable),
        case("filename-number", announce(filename=5), **unreadable),
        case("filename-object", announce(filename={"a": 1}), **unreadable),
        case("filename-nul", announce(filename="a\x00.pdf"), words="file name contains"),
        case("filename-newline", announce(filename="a\n.pdf"), words="file name contains"),
        case("filename-over-long", announce(filename="a" * 5000), words="file name is too long"),
        case("type-over-long", announce(type="t" * 1000), **unreadable),
        case("type-crlf", announce(type="text/plain\r\nX: y"), **unreadable),
        case("fingerprint-over-long", announce(fingerprint="f" * 5000), **unreadable),
        case("fingerprint-nul", announce(fingerprint="f\x00"), **unreadable),
        case("body-over-16k", announce(pad="p" * 20_000), **unreadable),
        case("body-over-form-limit", announce(pad="p" * (2 * 1024 * 1024)), status=413,
             kind="any", words=""),
        case("no-csrf", json_body(json.dumps({"size": 1}).encode(), csrf=None), kind="any",
             words=CSRF_WORDS),
        case("wrong-csrf", json_body(json.dumps({"size": 1}).encode(), csrf="x" * 43),
             kind="any", words=CSRF_WORDS),
    ]  # fmt: skip


def chunk_cases() -> list[Case]:
    def case(id: str, path: str, body: Body, **kw: Any) -> Case:
        kw.setdefault("kind", "json")
        kw.setdefault("needs", "upload")
        return Case("chunk-" + id, "PUT", path, body, **kw)

    mine = "/compose/uploads/{upload}"
    unreadable = {"words": FILE_UNREADABLE}
    gone = {"status": 404, "words": UPLOAD_GONE}
    return [
        case("offset-missing", mine, chunk(None), **unreadable),
        case("offset-empty", mine, chunk(""), **unreadable),
        case("offset-word", mine, chunk("abc"), **unreadable),
        case("offset-float", mine, chunk("1.5"), **unreadable),
        case("offset-exponent", mine, chunk("1e3"), **unreadable),
        case("offset-hex", mine, chunk("0x10"), **unreadable),
        case("offset-negative", mine, chunk("-1"), status=409, words=""),
        case("offset-huge", mine, chunk("9" * 40), status=409, words=""),
        case("offset-5000-digits", mine, chunk("9" * 5000), **unreadable),
        case("offset-beyond", mine, chunk("5"), status=409, words=""),
        case("offset-two-values", mine, chunk("0, 0"), **unreadable),
        case("too-many-bytes", mine, chunk("0", b"x" * 11), status=413, words="too large"),
        case("no-csrf", mine, chunk("0", csrf=None), words=CSRF_WORDS),
        case("wrong-csrf", mine, chunk("0", csrf="x" * 43), words=CSRF_WORDS),
        case("unknown-id", "/compose/uploads/00000000-0000-4000-8000-000000000000",
             chunk("0"), **gone),
        case("tampered-id", "/compose/uploads/{upload_tampered}", chunk("0"), **gone),
        case("word-id", "/compose/uploads/abc", chunk("0"), **gone),
        case("long-id", "/compose/uploads/" + "a" * 5000, chunk("0"), **gone),
        case("non-ascii-id", "/compose/uploads/ää", chunk("0"), **gone),
        case("encoded-dot-dot-id", "/compose/uploads/%2E%2E", chunk("0"), **gone),
        Case("status-unknown-id", "GET", "/compose/uploads/abc", needs="sender", status=404,
             kind="json", words=UPLOAD_GONE),
        Case("status-tampered-id", "GET", "/compose/uploads/{upload_tampered}", needs="upload",
             status=404, kind="json", words=UPLOAD_GONE),
    ]  # fmt: skip


def compose_cases() -> list[Case]:
    def case(id: str, body: Body, words: str, **kw: Any) -> Case:
        kw.setdefault("draft_kept", True)
        return Case("compose-" + id, "POST", "/compose", body, needs="sender", words=words, **kw)

    def refused(id: str, field: str, value: str, words: str) -> Case:
        return case(id, compose(**{field: value}), words)

    subject_bad = "The subject " + BAD_CHARACTERS
    body_bad = "The message " + BAD_CHARACTERS
    signature_bad = "The signature " + BAD_CHARACTERS
    cases = [
        refused("recipients-empty", "recipients", "", "Enter at least one recipient."),
        refused("recipients-percent", "recipients", "ville%evil.example@valtori.fi",
                "cannot be used"),
        refused("recipients-bang", "recipients", "evil.example!ville@valtori.fi",
                "cannot be used"),
        refused("recipients-quoted", "recipients", '"ville virkamies"@valtori.fi',
                "without quotation marks"),
        refused("recipients-route", "recipients", "@relay.example:ville@valtori.fi",
                "cannot be used"),
        refused("recipients-route-list", "recipients", "@a.example,@b.example:ville@valtori.fi",
                "cannot be used"),
        refused("recipients-foreign-phone", "recipients", PLAIN + ".+46701234567.sec",
                "cannot receive a PIN"),
        refused("recipients-us-phone", "recipients", PLAIN + ".+12015550123.sec",
                "cannot receive a PIN"),
        refused("recipients-premium-number", "recipients", PLAIN + ".0600123456.sec",
                "not a valid mobile phone number"),
        refused("recipients-not-allowed-domain", "recipients", "ville@evil.example",
                "allowed domain"),
        refused("recipients-nul", "recipients", "ville\x00@valtori.fi", "not a valid"),
        refused("recipients-rtl-override", "recipients", "ville\u202e@valtori.fi",
                "not a valid"),
        refused("recipients-51", "recipients",
                ",".join(f"p{i}@valtori.fi" for i in range(51)), "at most 50 recipients"),
        refused("recipients-over-long", "recipients", "a" * 100_000 + "@valtori.fi",
                "not a valid"),
        refused("subject-empty", "subject", "", "Enter a subject."),
        refused("subject-over-long", "subject", "x" * 256, "at most 255 characters"),
        refused("subject-nul", "subject", "Hakemus\x00", subject_bad),
        refused("subject-newline", "subject", "Hakemus\nBcc: x@evil.example", subject_bad),
        refused("subject-tab", "subject", "Hake\tmus", subject_bad),
        refused("subject-escape", "subject", "\x1b[31mHakemus", subject_bad),
        refused("subject-delete", "subject", "Hakemus\x7f", subject_bad),
        refused("subject-c1", "subject", "Hake\x85mus", subject_bad),
        refused("subject-rtl-override", "subject", "Lasku \u202efdp.exe", subject_bad),
        refused("subject-isolate", "subject", "Lasku \u2067x", subject_bad),
        refused("subject-line-separator", "subject", "Hake\u2028mus", subject_bad),
        refused("body-nul", "body", "Hei\x00", body_bad),
        refused("body-escape", "body", "Hei \x1b]0;title\x07", body_bad),
        refused("body-vertical-tab", "body", "Hei\x0b", body_bad),
        refused("body-c1", "body", "Hei\x9b", body_bad),
        refused("body-over-long", "body", "x" * 1_000_001, "The message is too long."),
        refused("signature-nul", "signature", "Liisa\x00", signature_bad),
        refused("signature-escape", "signature", "Liisa\x1b[0m", signature_bad),
        refused("signature-over-long", "signature", "x" * 1_000_001,
                "The signature is too long."),
        case("subject-invalid-utf8", compose_raw("subject", b"Hakemus \xff\xfe"),
             FORM_UNREADABLE),
        case("body-invalid-utf8", compose_raw("body", b"Hei \xc3\x28"), FORM_UNREADABLE),
        case("recipients-invalid-utf8", compose_raw("recipients", b"ville\xff@valtori.fi"),
             FORM_UNREADABLE),
        case("no-csrf", compose(csrf=None), CSRF_WORDS, draft_kept=False),
        case("wrong-csrf", compose(csrf="x" * 43), CSRF_WORDS, draft_kept=False),
        case("no-boundary", multipart_raw(b"--x\r\n", "multipart/form-data"), FORM_UNREADABLE,
             draft_kept=False),
        case("broken-multipart", multipart_raw(b"garbage without boundaries",
             "multipart/form-data; boundary=zzz"), FORM_UNREADABLE, draft_kept=False),
        case("urlencoded", form(COMPOSE_FIELDS), FORM_UNREADABLE, draft_kept=False),
    ]  # fmt: skip
    return cases


def reply_cases() -> list[Case]:
    def case(id: str, body: Body, words: str, **kw: Any) -> Case:
        kw.setdefault("draft_kept", True)
        return Case("reply-" + id, "POST", "/m/{m}/reply", body, needs="recipient",
                    words=words, **kw)  # fmt: skip

    body_bad = "The message " + BAD_CHARACTERS
    return [
        case("empty", reply(body=""), "Write a reply."),
        case("blank", reply(body=" \n\t "), "Write a reply."),
        case("nul", reply(body="Kiitos\x00"), body_bad),
        case("escape", reply(body="\x1b[2JKiitos"), body_bad),
        case("c1", reply(body="Kiitos\x85"), body_bad),
        case("over-long", reply(body="x" * 1_000_001), "The message is too long."),
        case("invalid-utf8", compose_raw("body", b"Kiitos \xff"), FORM_UNREADABLE),
        case("no-csrf", reply(csrf=None), CSRF_WORDS, draft_kept=False),
    ]


def language_menu_cases() -> list[Case]:
    return [
        Case(f"menu-{name}", "GET", path, status=404, words=NOT_FOUND)
        for name, path in [
            ("encoded-backslash", "/%5Cevil.example/x"),
            ("double-slash", "//evil.example/x"),
            ("encoded-double-slash", "/%2F%2Fevil.example"),
            ("tab", "/\t/evil.example"),
            ("encoded-tab", "/%09/evil.example"),
            ("backslash", "/\\evil.example"),
        ]
    ]


CASES = [
    *register_cases(),
    *method_cases(),
    *token_cases(),
    *id_cases(),
    *announce_cases(),
    *chunk_cases(),
    *compose_cases(),
    *reply_cases(),
    *language_menu_cases(),
]


def test_the_table_has_at_least_150_cases_with_unique_ids():
    assert len(CASES) >= 150
    assert len({case.id for case in CASES}) == len(CASES)


# -- running a case -------------------------------------------------------------------------


async def prepare(client: Any, sign_in: Any, needs: str) -> World:
    world = World()
    await client.get("/?lang=en")  # the language cookie: every answer below is in English
    if needs != "anon":
        world.s = token_of(await sign_in(SENDER))
    if needs == "upload":
        csrf = await csrf_of(client, "/compose")
        response = await client.post(
            "/compose/uploads",
            json={"filename": "a.pdf", "size": 10, "type": "application/pdf", "fingerprint": "f"},
            headers={CSRF_HEADER: csrf},
        )
        assert response.status_code == 201, await response.get_data(as_text=True)
        world.upload = (await response.get_json())["id"]
    if needs == "recipient":
        await send_message(
            client,
            {"recipients": PLAIN, "subject": "S", "body": "B"},
            [("attachments", "a.txt", b"hello")],
        )
        link = await newest_link(client, PLAIN, "m")
        await open_message(client, link)
        world.m = token_of(link)
        world.attachment = (await Attachment.first()).id
    world.csrf = await csrf_of(client, "/")
    return world


async def stored_state(data_dir: Path) -> dict[str, Any]:
    """Everything a request could have stored: rows, files, how far uploads have come."""
    counts = await row_counts()
    return {
        "rows": {name: count for name, count in counts.items() if name != "Message"},
        "sent": await Message.filter(status=MessageStatus.SENT).count(),
        "drafts": await Message.filter(status=MessageStatus.DRAFT).count(),
        "uploads": sorted(await Upload.all().values_list("id", "received")),
        "files": [str(path) for path in stored_files(data_dir)],
    }


def assert_nothing_stored(before: dict[str, Any], after: dict[str, Any], draft_kept: bool) -> None:
    if draft_kept:
        # The form's draft keeps what was typed (documented); it may be made, never sent. A
        # reply's draft needs its author: the recipient becomes a sender row on the first one.
        assert after["drafts"] - before["drafts"] in (0, 1)
        assert after["rows"]["Sender"] - before["rows"]["Sender"] in (0, 1)
        after = {
            **after,
            "drafts": before["drafts"],
            "rows": {**after["rows"], "Sender": before["rows"]["Sender"]},
        }
    assert after == before


def resolve_like_a_browser(href: str) -> str:
    """The host a browser would go to for ``href`` found on a page of http://portal.test/."""
    href = re.sub(r"[\t\n\r]", "", html.unescape(href)).replace("\\", "/")
    return urlsplit(urljoin("http://portal.test/", href)).netloc


def check_answer(case: Case, response: Any, text: str) -> None:
    content_type = response.headers.get("Content-Type", "")
    wanted = (case.words,) if isinstance(case.words, str) else case.words
    kind = case.kind
    if kind == "any":
        kind = "json" if content_type.startswith("application/json") else "html"
    if kind == "json":
        assert content_type.startswith("application/json"), content_type
        error = json.loads(text)["error"]
        assert isinstance(error, str) and error.strip()
        assert any(words in error for words in wanted), error
        return
    assert content_type.startswith("text/html"), content_type
    assert '<html lang="en">' in text
    assert "Traceback" not in text
    unescaped = html.unescape(text)
    assert any(words in unescaped for words in wanted), f"{case.words!r} not on the page"
    for href in re.findall(r'<a href="([^"]+)" lang="\w+"', text):
        assert resolve_like_a_browser(href) == "portal.test", href


def summary(text: str) -> str:
    """The title and the messages of an answer: what a failed case shows."""
    title = re.search(r"<title>(.*?)</title>", text, re.S)
    if title is None:
        return text[:300]
    messages = re.findall(r'class="(?:field-error|error-summary)[^"]*"[^>]*>(.*?)</', text, re.S)
    return html.unescape(f"{title.group(1).strip()}: {' | '.join(messages)[:300]}")


def quoted_path(path: str) -> str:
    """Characters a real client must percent-encode (space, non-ASCII); the rest as written."""
    return quote(path, safe="/%?=&:@!$'()*+,;~\\\t")


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
async def test_hostile_request_gets_a_4xx_with_a_message_and_stores_nothing(
    case, client, sign_in, data_dir, caplog
):
    world = await prepare(client, sign_in, case.needs)
    body, headers = case.body(world)
    before = await stored_state(data_dir)
    caplog.clear()
    caplog.set_level(logging.INFO)

    response = await client.open(
        quoted_path(world.format(case.path)),
        method=case.method,
        data=body,
        headers={"Accept-Language": "en", **headers},
    )
    text = await response.get_data(as_text=True)

    assert response.status_code == case.status, summary(text)
    check_answer(case, response, text)
    assert_nothing_stored(before, await stored_state(data_dir), case.draft_kept)
    problems = [
        record
        for record in caplog.records
        if record.levelno >= logging.ERROR or record.exc_info or "unhandled" in record.message
    ]
    assert problems == [], [record.getMessage() for record in problems]
    assert "Traceback" not in caplog.text


@pytest.mark.parametrize("value", ["0", "9" * 30, str(2**63), str(2**31)])
async def test_removing_an_attachment_id_too_big_for_the_database_is_no_error(
    value, client, sign_in, data_dir, caplog
):
    world = await prepare(client, sign_in, "upload")  # a draft exists: the id is looked up
    before = await stored_state(data_dir)
    caplog.clear()

    response = await client.post(
        f"/compose/attachments/{value}/remove", form={"csrf_token": world.csrf}
    )

    if int(value) > 2**31 - 1:  # no attachment can have such an id: not even looked up
        assert response.status_code == 404
        assert "Page not found" in await page_text(response)
    else:  # back to the compose page: nothing was there to remove
        assert response.status_code == 303
    assert await stored_state(data_dir) == before
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


@pytest.mark.parametrize("locale", ["fi", "sv"])
@pytest.mark.parametrize(
    "case_id", ["register-no-csrf", "method-PUT-/compose", "register-empty", "menu-tab"]
)
async def test_the_message_is_in_the_users_language(locale, case_id, portal_app, client, sign_in):
    from portal.i18n import _, locale_context

    case = next(case for case in CASES if case.id == case_id)
    world = await prepare(client, sign_in, case.needs)
    await client.get(f"/?lang={locale}")
    body, headers = case.body(world)

    response = await client.open(
        quoted_path(world.format(case.path)), method=case.method, data=body, headers=headers
    )
    text = html.unescape(await response.get_data(as_text=True))

    assert response.status_code == case.status
    assert f'<html lang="{locale}">' in text
    english = case.words if isinstance(case.words, str) else case.words[0]
    source = {
        CSRF_WORDS: "Your session has expired or the form is out of date. "
        "Reload the page and try again.",
    }.get(english, english)
    async with portal_app.app.app_context():  # the app's catalogs translate
        with locale_context(locale):
            translated = _(source)
    assert translated != source, f"{source!r} is not translated to {locale}"
    assert translated in text
