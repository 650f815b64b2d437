"""The plugin system: every hook documented and tested, third-party plugins, start-up checks.

A hook named ``foo`` is covered by a test named ``test_hook_foo…`` (the meta-test below fails
when a new hook has none), through a small agency plugin registered like any other.
"""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import inspect
import logging
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

import pluggy
import pytest
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from quart import Blueprint

from portal import hookimpl, hookspecs
from portal.app import create_app
from portal.config import ConfigError
from portal.crypto.envelope import KeyWrapper
from portal.i18n import TranslationDomain
from portal.keys.base import KeyProvider, WrappedKey
from portal.mail.base import MailTransport, OutgoingMail
from portal.models import Attachment, Message, OutboxItem, Recipient
from portal.plugins import make_plugin_manager
from portal.scanning.base import Scanner, Verdict
from portal.services.outbox import opened_text
from portal.sms.base import SmsGateway
from portal.storage.base import ObjectNotFound, StorageBackend, StorageError, StorageWriter
from portal.testing import builtin_plugins, csrf_from, links_in
from portal.themes import Theme
from portal.verification.base import Outcome, VerificationProvider

from .helpers import (
    attachment_bytes,
    eventually,
    multipart,
    page_text,
    post_compose,
    row_where,
    rows_where,
    send_message,
    sign_in_delivered,
)

HERE = Path(__file__).resolve().parent
HOOKS = sorted(name for name, obj in vars(hookspecs).items() if hasattr(obj, "sinetti_spec"))


# -- the meta-tests -----------------------------------------------------------------------


def test_there_are_hooks():
    assert "register_themes" in HOOKS
    assert len(HOOKS) >= 9


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented(hook):
    doc = inspect.getdoc(getattr(hookspecs, hook))

    assert doc and len(doc) > 30, f"hook {hook} needs a docstring saying when it is called"


def unit_test_names() -> set[str]:
    names = set()
    for path in HERE.rglob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                names.add(node.name)
    return names


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test(hook):
    tests = unit_test_names()

    assert any(name.startswith(f"test_hook_{hook}") for name in tests), (
        f"write a test named test_hook_{hook}_… for the new hook {hook}"
    )


#: ``register_*`` hooks that no built-in plugin has a use for (yet); their own
#: ``test_hook_…`` tests exercise them with a test plugin (``tests/unit/test_cli.py``).
NO_BUILT_IN_YET = {"register_cli_commands"}


def test_every_register_hook_is_implemented_by_a_built_in_plugin():
    pm = make_plugin_manager(builtin_plugins())

    for hook in HOOKS:
        if hook.startswith("register_") and hook not in NO_BUILT_IN_YET:
            implementations = getattr(pm.hook, hook).get_hookimpls()
            assert implementations, f"no built-in plugin implements {hook}"


def test_built_in_plugins_are_found_through_entry_points():
    pm = make_plugin_manager()  # what `sinetti serve` does

    names = {pm.get_name(plugin) for plugin in pm.get_plugins()}
    assert {
        "storage-local",
        "verification-basic",
        "mail-smtp",
        "devbox",
        "theme-default",
        "theme-valtori",
    } <= names


def test_misspelled_hook_implementation_stops_start_up():
    class Misspelled:
        @hookimpl
        def register_theme(self) -> list[Theme]:  # not a hook: register_themes
            return []

    with pytest.raises(pluggy.PluginValidationError, match="register_theme"):
        make_plugin_manager([*builtin_plugins(), Misspelled()])


def test_two_plugins_providing_the_same_name_stop_start_up(portal_config):
    class SecondLocal:
        @hookimpl
        def register_storage_backends(self):
            return [type("OtherLocal", (MemoryStorage,), {"name": "local"})]

    with pytest.raises(ConfigError, match="two plugins provide the storage backend 'local'"):
        create_app(portal_config, plugins=[*builtin_plugins(), SecondLocal()])


# -- a third-party plugin, as an agency would write one -----------------------------------


class MemoryWriter(StorageWriter):
    def __init__(self, store: dict[str, bytes], key: str) -> None:
        self.store, self.key, self.data = store, key, bytearray()

    async def write(self, data: bytes) -> None:
        self.data += data

    async def commit(self) -> None:
        self.store[self.key] = bytes(self.data)

    async def abort(self) -> None:
        self.data.clear()


class MemoryStorage(StorageBackend):
    name = "memory"
    objects: ClassVar[dict[str, bytes]] = {}

    async def writer(self, key: str) -> StorageWriter:
        return MemoryWriter(self.objects, key)

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        if key not in self.objects:
            raise ObjectNotFound(key)
        yield self.objects[key][start:end]

    async def delete(self, key: str) -> None:
        self.objects.pop(key, None)

    # Resumable uploads: the parts of each upload, by number, until they are assembled.
    uploads: ClassVar[dict[str, dict[int, bytes]]] = {}

    async def start_upload(self, key: str) -> str:
        upload_id = f"{key}:{uuid.uuid4().hex}"
        self.uploads[upload_id] = {}
        return upload_id

    async def upload_part(
        self, key: str, upload_id: str, number: int, offset: int, data: AsyncIterable[bytes]
    ) -> str:
        if upload_id not in self.uploads:
            raise StorageError(f"no upload {upload_id}")
        self.uploads[upload_id][number] = b"".join([chunk async for chunk in data])
        return str(number)

    async def complete_upload(self, key: str, upload_id: str, tags: list[str]) -> None:
        parts = self.uploads.pop(upload_id)
        self.objects[key] = b"".join(parts[int(tag)] for tag in tags)

    async def abort_upload(self, key: str, upload_id: str) -> None:
        self.uploads.pop(upload_id, None)


class MemoryMail(MailTransport):
    name = "memory"
    settings_prefix = "MEMORY_MAIL_"
    sent: ClassVar[list[OutgoingMail]] = []

    async def send(self, mail: OutgoingMail) -> None:
        self.sent.append(mail)


class MemorySms(SmsGateway):
    name = "memory"
    sent: ClassVar[list[tuple[str, str]]] = []

    async def send(self, to: str, text: str) -> None:
        self.sent.append((to, text))


class VaultKeys(KeyProvider):
    """Keys kept "in a vault": a KEK the portal never sees, reached only through this object."""

    name = "vault"
    opened: ClassVar[int] = 0

    async def open(self) -> None:
        VaultKeys.opened += 1
        self._wrapper = KeyWrapper(bytes(32))

    @property
    def current_kek_id(self) -> str:
        return "vault-1"

    async def wrap(self, plain: bytes, context: bytes) -> WrappedKey:
        return WrappedKey("vault-1", self._wrapper.wrap(plain, context))

    async def unwrap(self, wrapped: WrappedKey, context: bytes) -> bytes:
        return self._wrapper.unwrap(wrapped.blob, context)


class GatewayScanner(Scanner):
    """The agency's own malware check: here, a marker in the file's bytes."""

    name = "gateway"
    opened: ClassVar[int] = 0

    async def open(self) -> None:
        GatewayScanner.opened += 1

    async def scan(self, chunks: AsyncIterable[bytes]) -> Verdict:
        data = b"".join([chunk async for chunk in chunks])
        return Verdict.infected("Gateway.Marker") if b"MALWARE" in data else Verdict.ok()


class StrongId(VerificationProvider):
    name = "strong-id"

    def describe(self, recipient: Recipient) -> str:
        return "Identify with your bank credentials."

    async def start(self, recipient: Recipient, locale: str) -> Outcome:
        return Outcome.verified()  # the identification service said yes


ACME = Theme(
    name="acme",
    organisation={"fi": "Acme-virasto", "sv": "Acme-verket", "en": "Acme Agency"},
    title={"fi": "Turvaviesti", "sv": "Säkert meddelande", "en": "Secure message"},
    tokens={"brand": "#123456"},
)

acme_pages = Blueprint("acme", __name__)


#: Acme's own strings; the fixture points the domain at catalogs compiled for the test.
ACME_STRINGS = TranslationDomain("acme", Path("compiled-by-the-fixture"))


@acme_pages.get("/acme/hello")
async def hello() -> str:
    return ACME_STRINGS.gettext("Hello from Acme")


@acme_pages.get("/acme/continue")
async def continue_word() -> str:
    return ACME_STRINGS.gettext("Continue")


class AgencyPlugin:
    """Everything an agency's own package could register, recording the events it sees."""

    def __init__(self, locales: Path) -> None:
        self.locales = locales
        self.messages: list[Message] = []
        self.registrations: list[tuple[str, bool]] = []
        self.opened: list[tuple[str, bool]] = []
        self.downloads: list[str | None] = []
        self.locked: list[str] = []
        self.replies: list[tuple[str, str]] = []

    @hookimpl
    def register_storage_backends(self):
        return [MemoryStorage]

    @hookimpl
    def register_verification_providers(self):
        return [StrongId]

    @hookimpl
    def register_mail_transports(self):
        return [MemoryMail]

    @hookimpl
    def register_sms_gateways(self):
        return [MemorySms]

    @hookimpl
    def register_key_providers(self):
        return [VaultKeys]

    @hookimpl
    def register_scanners(self):
        return [GatewayScanner]

    @hookimpl
    def register_themes(self):
        return [ACME]

    @hookimpl
    def register_blueprints(self):
        return [acme_pages]

    @hookimpl
    def register_translation_domains(self):
        return [dataclasses.replace(ACME_STRINGS, folder=self.locales)]

    @hookimpl
    def message_sent(self, message: Message) -> None:
        self.messages.append(message)

    @hookimpl
    def sender_registered(self, email: str, new_sender: bool) -> None:
        self.registrations.append((email, new_sender))

    @hookimpl
    def message_opened(self, recipient: Recipient, first: bool) -> None:
        self.opened.append((recipient.email, first))

    @hookimpl
    def download_completed(self, message: Message, attachment: Attachment | None) -> None:
        self.downloads.append(attachment.filename if attachment else None)

    @hookimpl
    async def link_locked(self, recipient: Recipient) -> None:  # a coroutine: awaited
        await asyncio.sleep(0)
        self.locked.append(recipient.email)

    @hookimpl
    async def reply_sent(self, reply: Message, original: Message) -> None:
        await asyncio.sleep(0)
        self.replies.append((reply.subject, original.subject))


class BrokenPlugin:
    """A plugin whose every event hook fails: the portal must go on as if it were not there."""

    @hookimpl
    def message_sent(self, message: Message) -> None:
        raise RuntimeError("the audit database is down")

    @hookimpl
    async def sender_registered(self, email: str, new_sender: bool) -> None:
        raise RuntimeError("so is the CRM")

    @hookimpl
    async def message_opened(self, recipient: Recipient, first: bool) -> None:
        raise RuntimeError("and the dashboard")


def compile_catalog(folder: Path, locale: str, strings: dict[str, str]) -> None:
    catalog = Catalog(locale=locale)
    for msgid, msgstr in strings.items():
        catalog.add(msgid, msgstr)
    target = folder / locale / "LC_MESSAGES"
    target.mkdir(parents=True)
    with (target / "messages.mo").open("wb") as fh:
        write_mo(fh, catalog)


@pytest.fixture
def agency(tmp_path) -> AgencyPlugin:
    locales = tmp_path / "acme-locales"
    compile_catalog(
        locales, "fi", {"Hello from Acme": "Terveisiä Acmelta", "Continue": "Eteenpäin"}
    )
    compile_catalog(locales, "sv", {"Hello from Acme": "Hälsningar från Acme"})
    MemoryStorage.objects = {}
    MemoryStorage.uploads = {}
    MemoryMail.sent = []
    MemorySms.sent = []
    VaultKeys.opened = 0
    GatewayScanner.opened = 0
    return AgencyPlugin(locales)


@pytest.fixture
def portal_plugins(agency):
    return [*builtin_plugins(), agency]


@pytest.fixture
def portal_config(portal_config):
    return {
        **portal_config,
        "storage": "memory",
        "mail": "memory",
        "sms": "memory",
        "keys": "vault",
        "scanner": "gateway",
        "theme": "acme",
    }


@pytest.fixture
def sign_in(client):
    """Like the shared ``sign_in``, reading the link from the memory transport once sent."""

    async def run(address: str) -> None:
        await sign_in_delivered(
            client, address, lambda: [mail.text for mail in MemoryMail.sent if mail.to == address]
        )

    return run


def providers(portal_app):
    return portal_app.app.extensions["sinetti"].providers


async def sign_in_and_send(client, sign_in) -> str:
    await sign_in("liisa@example.com")
    return await send_message(
        client,
        {"recipients": "ville@valtori.fi.0400123456.sec", "subject": "S"},
        [("attachments", "a.txt", b"stored in memory")],
    )


async def test_hook_register_storage_backends_a_plugin_backend_stores_uploads(
    portal_app, client, sign_in
):
    assert isinstance(providers(portal_app).storage, MemoryStorage)

    await sign_in_and_send(client, sign_in)

    [stored] = MemoryStorage.objects.values()
    assert b"stored in memory" not in stored  # the portal seals before a backend sees a byte
    attachment = await Attachment.get()
    assert await attachment_bytes(portal_app.app, attachment) == b"stored in memory"


async def test_hook_register_verification_providers_adds_a_provider(portal_app):
    verification = providers(portal_app).verification

    assert isinstance(verification["strong-id"], StrongId)
    assert {"none", "sms-pin", "strong-id"} <= set(verification)


async def test_hook_register_mail_transports_selected_transport_delivers(portal_app, client):
    assert isinstance(providers(portal_app).mail, MemoryMail)
    page = await client.get("/")
    await client.post(
        "/", form={"email": "liisa@example.com", "csrf_token": csrf_from(await page_text(page))}
    )

    async def delivered():
        return [m.to for m in MemoryMail.sent]

    assert await eventually(delivered) == ["liisa@example.com"]


async def test_hook_register_sms_gateways_selected_gateway_sends(portal_app):
    from portal.services import outbox

    assert isinstance(providers(portal_app).sms, MemorySms)

    async with portal_app.app.app_context():  # the text is sealed with the app's key
        await outbox.enqueue_sms("+358400123456", "PIN 1234")
    outbox.wake()

    async def sent():
        return MemorySms.sent

    assert await eventually(sent) == [("+358400123456", "PIN 1234")]
    assert (await OutboxItem.get()).status == "sent"


async def test_hook_register_key_providers_selected_provider_is_opened_and_wraps(portal_app):
    keys = providers(portal_app).keys

    assert isinstance(keys, VaultKeys) and VaultKeys.opened == 1
    new = await keys.new_key(b"message 1")
    assert new.wrapped.kek_id == "vault-1"
    assert await keys.unwrap((await keys.rewrap(new.wrapped, b"message 1")), b"message 1") == (
        new.plain
    )


async def test_hook_register_scanners_selected_scanner_is_opened_and_scans(portal_app):
    scanner = providers(portal_app).scanner

    async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
        for part in parts:
            yield part

    assert isinstance(scanner, GatewayScanner) and GatewayScanner.opened == 1
    assert await scanner.scan(chunks(b"a ", b"MAL", b"WARE")) == Verdict(False, "Gateway.Marker")
    assert await scanner.scan(chunks(b"a letter")) == Verdict.ok()


async def test_hook_register_themes_a_third_party_theme_brands_the_pages(portal_app, client):
    html = await page_text(await client.get("/?lang=sv"))
    css = await page_text(await client.get("/theme.css"))

    assert providers(portal_app).theme is ACME
    assert "Acme-verket" in html
    assert "Säkert meddelande" in html
    assert "--brand: #123456;" in css


async def test_hook_register_blueprints_adds_pages(client):
    response = await client.get("/acme/hello?lang=en")

    assert response.status_code == 200
    assert await page_text(response) == "Hello from Acme"


async def test_hook_register_translation_domains_translates_plugin_strings(client):
    assert await page_text(await client.get("/acme/hello?lang=fi")) == "Terveisiä Acmelta"
    assert await page_text(await client.get("/acme/hello?lang=sv")) == "Hälsningar från Acme"


async def test_a_plugin_translation_never_changes_the_core_words(client):
    # Acme's Finnish catalog says "Eteenpäin" for "Continue": in Acme's domain only.
    front_page = await page_text(await client.get("/?lang=fi"))

    assert "Eteenpäin" not in front_page
    assert ">Jatka</button>" in front_page
    assert await page_text(await client.get("/acme/continue?lang=fi")) == "Eteenpäin"


async def test_a_string_missing_from_a_plugin_catalog_falls_back_to_the_core(client):
    # Acme's Swedish catalog lacks "Continue"; the core's Swedish word is used.
    assert await page_text(await client.get("/acme/continue?lang=sv")) == "Fortsätt"
    assert await page_text(await client.get("/acme/continue?lang=en")) == "Continue"


async def test_hook_message_sent_gets_the_message_with_recipients_and_attachments(
    agency, client, sign_in
):
    location = await sign_in_and_send(client, sign_in)

    (message,) = agency.messages
    assert location.endswith(str(message.id))
    assert [r.phone for r in message.recipients] == ["+358400123456"]
    assert [a.filename for a in message.attachments] == ["a.txt"]


async def test_hook_message_sent_is_not_called_for_a_refused_message(agency, client, sign_in):
    await sign_in("liisa@example.com")

    response = await post_compose(
        client, {"recipients": "x@evil.com", "subject": "", "action": "send"}
    )

    assert response.status_code == 400
    assert agency.messages == []


async def test_hook_sender_registered_tells_new_from_returning_senders(agency, client):
    for _ in range(2):
        page = await client.get("/")
        await client.post(
            "/", form={"email": "Liisa@example.com", "csrf_token": csrf_from(await page_text(page))}
        )

    assert agency.registrations == [("Liisa@example.com", True), ("Liisa@example.com", False)]


async def recipient_link(app, address: str) -> str:
    key = app.extensions["sinetti"].settings.secret_key

    async def link() -> str | None:
        item = await OutboxItem.filter(to_address=address).first()
        queued = opened_text(item, key) if item else ""
        texts = [queued, *(m.text for m in MemoryMail.sent if m.to == address)]
        found = [link for text in texts for link in links_in(text) if "/m/" in link]
        return urlsplit(found[0]).path if found else None

    found = await eventually(link)
    assert found
    return str(found)


async def test_hook_message_opened_tells_the_first_open_from_later_ones(
    portal_app, agency, client, sign_in
):
    await sign_in("liisa@example.com")
    response = await post_compose(
        client, {"recipients": "ville@valtori.fi", "subject": "S", "action": "send"}
    )
    assert response.status_code == 303
    link = await recipient_link(portal_app.app, "ville@valtori.fi")

    for _ in range(2):
        browser = portal_app.test_client()
        csrf = csrf_from(await page_text(await browser.get(link)))
        assert (await browser.post(link + "/open", form={"csrf_token": csrf})).status_code == 303

    assert agency.opened == [("ville@valtori.fi", True), ("ville@valtori.fi", False)]


async def test_hook_download_completed_only_when_the_last_byte_went_out(
    portal_app, agency, client, sign_in
):
    await sign_in("liisa@example.com")
    response = await post_compose(
        client,
        {"recipients": "maija@example.fi", "subject": "S", "action": "send"},
        [("attachments", "b.txt", b"0123456789")],
    )
    assert response.status_code == 303
    link = await recipient_link(portal_app.app, "maija@example.fi")
    browser = portal_app.test_client()
    csrf = csrf_from(await page_text(await browser.get(link)))
    await browser.post(link + "/open", form={"csrf_token": csrf})
    attachment = await row_where(portal_app, Attachment, filename="b.txt")
    url = f"{link}/attachments/{attachment.id}"

    await (await browser.get(url, headers={"Range": "bytes=0-4"})).get_data()
    assert agency.downloads == []  # the first half only
    await (await browser.get(url, headers={"Range": "bytes=5-"})).get_data()
    await (await browser.get(url)).get_data()
    await (await browser.get(link + "/zip")).get_data()

    assert agency.downloads == ["b.txt", "b.txt", None]


async def test_plugin_settings_prefix_claims_its_variables(portal_config, agency):
    app = create_app(
        {**portal_config, "plugin_options": {"MEMORY_MAIL_COLOUR": "blue"}},
        plugins=[*builtin_plugins(), agency],
    )

    assert app.extensions["sinetti"].providers.mail.options == {"colour": "blue"}


async def test_plugin_installed_but_not_selected_is_not_used(tmp_path, agency):
    app = create_app(
        {"data_dir": str(tmp_path), "secret_key": "k" * 40}, plugins=[*builtin_plugins(), agency]
    )
    chosen = app.extensions["sinetti"].providers

    assert (chosen.storage.name, chosen.mail.name, chosen.sms.name) == ("local", "dev", "dev")
    assert chosen.theme.name == "default"


async def pin_recipient_link(portal_app, client, sign_in) -> str:
    await sign_in("liisa@example.com")
    response = await post_compose(
        client,
        {"recipients": "ville@valtori.fi.0400123456.sec", "subject": "S", "action": "send"},
    )
    assert response.status_code == 303
    return await recipient_link(portal_app.app, "ville@valtori.fi")


async def test_hook_link_locked_is_awaited_once_when_wrong_pins_lock_the_link(
    portal_app, agency, client, sign_in
):
    link = await pin_recipient_link(portal_app, client, sign_in)
    browser = portal_app.test_client()
    csrf = csrf_from(await page_text(await browser.get(link)))
    assert (await browser.post(link + "/open", form={"csrf_token": csrf})).status_code == 303
    csrf = csrf_from(await page_text(await browser.get(link + "/code")))

    answers = [
        (await browser.post(link + "/code", form={"code": "000000x", "csrf_token": csrf}))
        for _ in range(6)
    ]

    assert [answer.status_code for answer in answers][-2:] == [403, 403]
    assert agency.locked == ["ville@valtori.fi"]  # once, although two answers met the lock


async def test_hook_reply_sent_names_the_reply_and_the_message_it_answers(
    portal_app, agency, client, sign_in
):
    await sign_in("liisa@example.com")
    response = await post_compose(
        client, {"recipients": "ville@valtori.fi", "subject": "Hakemus", "action": "send"}
    )
    assert response.status_code == 303
    link = await recipient_link(portal_app.app, "ville@valtori.fi")
    reader = portal_app.test_client()
    csrf = csrf_from(await page_text(await reader.get(link)))
    assert (await reader.post(link + "/open", form={"csrf_token": csrf})).status_code == 303
    csrf = csrf_from(await page_text(await reader.get(link + "/reply")))
    body, content_type = multipart([("csrf_token", csrf), ("body", "Kiitos."), ("action", "send")])

    sent = await reader.post(link + "/reply", data=body, headers={"Content-Type": content_type})

    assert sent.status_code == 303
    assert agency.replies == [("Re: Hakemus", "Hakemus")]
    assert [message.subject for message in agency.messages] == ["Hakemus", "Re: Hakemus"]


class TestAPluginThatFails:
    @pytest.fixture
    def portal_plugins(self, agency):
        return [*builtin_plugins(), BrokenPlugin(), agency]

    async def test_its_failing_event_hooks_change_no_answer_and_nothing_stored(
        self, portal_app, agency, client, sign_in, caplog
    ):
        caplog.set_level(logging.ERROR, logger="portal.events")
        await sign_in("liisa@example.com")  # sender_registered raised: still signed in

        response = await post_compose(
            client, {"recipients": "ville@valtori.fi", "subject": "S", "action": "send"}
        )

        assert response.status_code == 303  # message_sent raised: the message was sent all the same
        assert len(await rows_where(client, Message, subject="S")) == 1
        assert len(agency.messages) == 1  # the other plugins still heard of it
        link = await recipient_link(portal_app.app, "ville@valtori.fi")
        reader = portal_app.test_client()
        csrf = csrf_from(await page_text(await reader.get(link)))
        assert (await reader.post(link + "/open", form={"csrf_token": csrf})).status_code == 303
        assert (await Recipient.get(email="ville@valtori.fi")).opened_at is not None
        failures = sorted(r.getMessage() for r in caplog.records if r.name == "portal.events")
        assert failures == [
            f"plugin BrokenPlugin failed in its {hook} hook; ignored"
            for hook in ("message_opened", "message_sent", "sender_registered")
        ]
