"""The application factory: ``create_app()`` is a few short ``configure_*`` steps."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import ChoiceLoader, FileSystemLoader
from quart import Quart, Response, abort, current_app, g, request, url_for
from werkzeug.exceptions import HTTPException
from werkzeug.routing import BuildError

from portal import db, i18n, security, sessions
from portal.body import BoundedHTTPConnection, BoundedRequest, cap_form_body
from portal.config import LOCALES, MB, Settings, load_settings
from portal.context import Portal
from portal.plugins import load_providers, make_plugin_manager, translation_domains
from portal.services import housekeeping, outbox_lanes, receipts, scanning
from portal.sessions import ServerSessionInterface
from portal.storage.base import StorageError
from portal.views import common, compose, recipient, reply, sender, sent, uploads

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
FORM_BODY_LIMIT = 1 * MB  # bodies of ordinary (non-upload) forms
CLEANUP_SECONDS = 600  # how often expired drafts, uploads and sessions are looked for
STOP_WAIT_SECONDS = 10  # how long stopping waits for the background tasks to end
_SAME_SITE_PATH = re.compile(r"/(?:[^/\\\s]|$)")  # "/" or "/x", never "//" or "/\\"


def create_app(
    config_override: Mapping[str, Any] | None = None, plugins: Sequence[object] | None = None
) -> Quart:
    """Build the portal.

    ``config_override`` (lower-case setting names) wins over ``PORTAL_*`` variables;
    ``plugins`` replaces entry-point discovery with exactly these plugin modules (tests).
    Raises :class:`portal.config.ConfigError` for any bad setting or missing plugin.
    """
    settings = load_settings(override=config_override)
    pm = make_plugin_manager(plugins)
    app = Quart(
        __name__, static_folder=str(HERE / "static"), template_folder=str(HERE / "templates")
    )
    app.request_class = BoundedRequest
    app.asgi_http_class = BoundedHTTPConnection
    app.extensions["sinetti"] = Portal(settings, pm, load_providers(pm, settings))
    portal_of(app).signing_key = receipts.startup_key(settings)
    configure_quart(app, settings)
    configure_i18n(app, settings)
    configure_templates(app)
    configure_security(app, settings)
    configure_lifecycle(app, settings)
    configure_views(app)
    return app


def configure_quart(app: Quart, settings: Settings) -> None:
    app.secret_key = settings.secret_key
    app.session_interface = ServerSessionInterface()  # type: ignore[assignment]
    app.config.update(
        # On https the __Host- prefix makes browsers refuse the cookie from any other host
        # (a sibling subdomain cannot plant a session id) and unless it is Secure with Path=/.
        SESSION_COOKIE_NAME="__Host-sinetti_session" if settings.https else "sinetti_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.https,
        # Uploads are checked by our own streaming parser; this only stops absurd bodies early.
        MAX_CONTENT_LENGTH=settings.max_attachments_bytes + 16 * MB,
        BODY_TIMEOUT=3600,
        RESPONSE_TIMEOUT=3600,
        SEND_FILE_MAX_AGE_DEFAULT=3600,
        TEMPLATES_AUTO_RELOAD=False,
    )


def configure_i18n(app: Quart, settings: Settings) -> None:
    portal_of(app).translations = i18n.load_catalogs(translation_domains(portal_of(app).pm))

    @app.before_request
    async def choose_locale() -> None:
        chosen = request.args.get("lang")
        g.locale_chosen = True  # the person chose it (menu or cookie), not the browser
        if chosen in LOCALES:
            g.remember_locale = chosen
        else:
            chosen = request.cookies.get(i18n.COOKIE)
            if chosen not in LOCALES:
                g.locale_chosen = False
                chosen = i18n.negotiate(
                    request.headers.get("Accept-Language"), settings.default_locale
                )
        i18n.set_locale(chosen)

    @app.after_request
    async def remember_locale(response: Response) -> Response:
        chosen = g.get("remember_locale")
        if chosen:
            response.set_cookie(
                i18n.COOKIE,
                chosen,
                max_age=365 * 24 * 3600,
                samesite="Lax",
                secure=settings.https,
                httponly=True,
            )
        return response


def _readable_path() -> str:
    """The path of this page, built from its matched route, if it can be fetched with GET;
    else of the nearest page above it that can; ``/`` when no route matches.

    Never the raw path: ``/%5Cevil.example/x`` arrives as ``/\\evil.example/x``, which a browser
    resolves to another site. ``url_for`` quotes every argument, and a page that answers a POST
    (``/m/…/close``) has no GET of its own, so its language menu leads to ``/m/…`` instead of a
    405.
    """
    rule = request.url_rule
    if rule is None or request.routing_exception is not None:
        return "/"  # unknown page (404) or method (405): the start page, not the raw path
    if request.method in ("GET", "HEAD"):
        found: tuple[str, Mapping[str, Any]] | None = (rule.endpoint, request.view_args or {})
    else:
        found = None
        adapter = current_app.url_map.bind("localhost")
        path = request.path
        while found is None and path not in ("", "/"):
            try:
                found = adapter.match(path, method="GET")
            except HTTPException:
                path = path.rsplit("/", 1)[0]
    if found is None:
        return "/"
    try:
        built = url_for(found[0], **found[1])
    except (BuildError, ValueError):
        return "/"
    # One slash, then a character a browser cannot read as the start of another host.
    return built if _SAME_SITE_PATH.match(built) else "/"


def lang_url(code: str) -> str:
    """The current page in another language (a GET keeps its other query arguments)."""
    path = _readable_path()
    args: dict[str, str] = {}
    if request.method in ("GET", "HEAD") and request.url_rule and not request.routing_exception:
        args = {key: value for key, value in request.args.items() if key != "lang"}
    args["lang"] = code
    return f"{path}?{urlencode(args)}"


def configure_templates(app: Quart) -> None:
    theme = portal_of(app).providers.theme
    loaders = [FileSystemLoader(str(HERE / "templates"))]
    if theme.templates_dir is not None:
        loaders.insert(0, FileSystemLoader(str(theme.templates_dir)))
    app.jinja_loader = ChoiceLoader(loaders)
    app.jinja_options = {
        **app.jinja_options,
        "extensions": ["jinja2.ext.i18n"],
        "trim_blocks": True,
        "lstrip_blocks": True,
    }
    app.jinja_env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]

    @app.context_processor
    async def globals_for_templates() -> dict[str, Any]:
        locale = i18n.current_locale()
        return {
            "locale": locale,
            "languages": i18n.LANGUAGE_NAMES,
            "lang_url": lang_url,
            "csrf_token": security.csrf_token,
            "signed_in_as": sessions.signed_in_as(),
            "theme": theme,
            "organisation": theme.text("organisation", locale),
            "service_title": theme.text("title", locale),
        }


def configure_security(app: Quart, settings: Settings) -> None:
    @app.before_request
    async def limit_and_check_csrf() -> None:
        if request.routing_exception is not None:
            return  # unknown page or method: routing answers 404/405 before any body is read
        view = app.view_functions.get(request.url_rule.endpoint) if request.url_rule else None
        if getattr(view, "streams_body", False):
            return  # the view reads its body as a stream and checks CSRF itself
        # A body without Content-Length (chunked) is capped as it arrives (portal.body).
        over = cap_form_body(request.body, FORM_BODY_LIMIT)
        if over or (request.content_length or 0) > FORM_BODY_LIMIT:
            abort(413)
        await security.check_csrf()

    @app.after_request
    async def headers(response: Response) -> Response:
        return security.set_security_headers(response, https=settings.https)


def configure_lifecycle(app: Quart, settings: Settings) -> None:
    providers = portal_of(app).providers
    tasks: list[asyncio.Task[None]] = []

    @app.before_serving
    async def start() -> None:
        await db.connect(settings)
        for provider in providers.all():
            await provider.open()
        tasks.append(
            asyncio.create_task(housekeeping.run(settings, providers.storage, CLEANUP_SECONDS))
        )
        if providers.scanner.inspects_files:
            tasks.append(
                asyncio.create_task(
                    scanning.run(
                        settings,
                        providers.storage,
                        providers.scanner,
                        settings.outbox_poll_seconds,
                    )
                )
            )
        tasks.append(
            asyncio.create_task(
                outbox_lanes.run_worker(
                    providers.mail,
                    providers.sms,
                    settings.outbox_poll_seconds,
                    settings.outbox_max_attempts,
                    timeout_seconds=settings.outbox_delivery_timeout_seconds,
                    concurrency=settings.outbox_concurrency,
                    retry_seconds=settings.outbox_retry_seconds,
                    claim_margin_seconds=settings.outbox_claim_margin_seconds,
                )
            )
        )

    @app.after_serving
    async def stop() -> None:
        for task in tasks:
            task.cancel()
        if tasks:
            # A cancelled task first ends the database step it is in (atomic.to_the_end).
            ended, stuck = await asyncio.wait(tasks, timeout=STOP_WAIT_SECONDS)
            for task in stuck:
                log.error("stopping: %s did not end within %d s", task, STOP_WAIT_SECONDS)
            for task in ended:
                if not task.cancelled() and task.exception() is not None:
                    log.error("stopping: %s had failed", task, exc_info=task.exception())
        tasks.clear()
        try:
            for provider in providers.all():
                await provider.close()
        finally:
            # Whatever failed before, the database closes: its global context left open
            # would keep any later app of this process from starting.
            await db.close()


def configure_views(app: Quart) -> None:
    for blueprint in (
        common.bp,
        sender.bp,
        compose.bp,
        uploads.bp,
        sent.bp,
        recipient.bp,
        reply.bp,
    ):
        app.register_blueprint(blueprint)
    for batch in portal_of(app).pm.hook.register_blueprints():
        for blueprint in batch:
            app.register_blueprint(blueprint)
    app.register_error_handler(HTTPException, common.http_error)
    app.register_error_handler(StorageError, common.storage_unavailable)
    for unavailable in db.UNAVAILABLE:
        app.register_error_handler(unavailable, common.database_unavailable)
    app.register_error_handler(Exception, common.server_error)


def portal_of(app: Quart) -> Portal:
    return app.extensions["sinetti"]
