"""portal.config: defaults, every PORTAL_* variable, validation, the TOML file, start-up checks."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest

from portal.app import create_app
from portal.config import MB, ConfigError, load_settings
from portal.testing import builtin_plugins

SECRET = "s" * 40


def test_defaults_are_the_embedded_development_setup(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={})

    assert settings.base_url == "http://127.0.0.1:8000"
    assert settings.data_dir == tmp_path / "data"
    assert settings.database_url == f"sqlite://{tmp_path / 'data' / 'sinetti.sqlite3'}"
    assert (settings.storage, settings.mail, settings.sms) == ("local", "dev", "dev")
    assert settings.theme == "default"
    assert settings.default_locale == "fi"
    assert settings.max_attachments_bytes == 400 * MB
    assert settings.max_recipients == 50
    assert settings.phone_suffix == ".sec"
    assert settings.link_valid_days == 30
    assert settings.registrations_per_address_per_day == 5
    assert settings.https is False
    assert settings.plugin_options == {}


def test_default_secret_key_is_generated_once_and_kept_private(tmp_path):
    first = load_settings(environ={"PORTAL_DATA_DIR": str(tmp_path)})
    second = load_settings(environ={"PORTAL_DATA_DIR": str(tmp_path)})

    assert len(first.secret_key) >= 32
    assert first.secret_key == second.secret_key
    mode = stat.S_IMODE((tmp_path / "secret.key").stat().st_mode)
    assert mode == 0o600


def every_variable(tmp_path: Path) -> dict[str, str]:
    return {
        "PORTAL_BASE_URL": "https://viestit.example.fi/",
        "PORTAL_SECRET_KEY": SECRET,
        "PORTAL_DATABASE_URL": "postgres://u:p@db.example.fi:5432/sinetti",
        "PORTAL_DATA_DIR": str(tmp_path / "portal-data"),
        "PORTAL_STORAGE": "local",
        "PORTAL_MAIL": "smtp",
        "PORTAL_SMTP_HOST": "smtp.example.fi",
        "PORTAL_SMTP_PORT": "2525",
        "PORTAL_SMTP_USERNAME": "portal",
        "PORTAL_SMTP_PASSWORD": "hunter2",
        "PORTAL_SMTP_STARTTLS": "true",
        "PORTAL_MAIL_FROM": "noreply@example.fi",
        "PORTAL_SMS": "dev",
        "PORTAL_ALLOWED_RECIPIENT_DOMAINS": "Valtori.fi; example.fi ,kela.fi",
        "PORTAL_THEME": "valtori",
        "PORTAL_DEFAULT_LOCALE": "sv",
        "PORTAL_MAX_ATTACHMENTS_BYTES": "1048576",
        "PORTAL_PHONE_SUFFIX": ".pin",
    }


def test_every_documented_variable_is_read(tmp_path):
    settings = load_settings(environ=every_variable(tmp_path))

    assert settings.base_url == "https://viestit.example.fi/"
    assert settings.https is True
    assert settings.url("/s/abc") == "https://viestit.example.fi/s/abc"
    assert settings.secret_key == SECRET
    assert settings.database_url == "postgres://u:p@db.example.fi:5432/sinetti"
    assert settings.data_dir == tmp_path / "portal-data"
    assert settings.storage == "local"
    assert settings.mail == "smtp"
    assert settings.mail_from == "noreply@example.fi"
    assert settings.sms == "dev"
    assert settings.allowed_recipient_domains == ("valtori.fi", "example.fi", "kela.fi")
    assert settings.theme == "valtori"
    assert settings.default_locale == "sv"
    assert settings.max_attachments_bytes == 1048576
    assert settings.phone_suffix == ".pin"
    assert settings.options_for("SMTP_") == {
        "host": "smtp.example.fi",
        "port": "2525",
        "username": "portal",
        "password": "hunter2",
        "starttls": "true",
    }


def test_smtp_variables_reach_the_smtp_transport(tmp_path, monkeypatch):
    for key, value in every_variable(tmp_path).items():
        monkeypatch.setenv(key, value)

    app = create_app(plugins=builtin_plugins())
    portal = app.extensions["sinetti"]
    mail = portal.providers.mail

    assert mail.name == "smtp"
    assert (mail.host, mail.port) == ("smtp.example.fi", 2525)
    assert (mail.username, mail.password) == ("portal", "hunter2")
    assert mail.starttls is True
    assert portal.providers.theme.name == "valtori"
    assert app.config["SESSION_COOKIE_SECURE"] is True


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PORTAL_BASE_URL", "ftp://portal.example.fi"),
        ("PORTAL_BASE_URL", "portal.example.fi"),
        ("PORTAL_SECRET_KEY", "too-short"),
        ("PORTAL_DATABASE_URL", "mysql://portal@db/sinetti"),
        ("PORTAL_DEFAULT_LOCALE", "de"),
        ("PORTAL_MAX_ATTACHMENTS_BYTES", "400MB"),
        ("PORTAL_MAX_ATTACHMENTS_BYTES", "0"),
        ("PORTAL_MAX_ATTACHMENTS_BYTES", "-1"),
        ("PORTAL_PHONE_SUFFIX", "sec"),
        ("PORTAL_PHONE_SUFFIX", "."),
        ("PORTAL_ALLOWED_RECIPIENT_DOMAINS", " , ;"),
        ("PORTAL_TIMEZONE", "Mars/Olympus_Mons"),
        ("PORTAL_LINK_VALID_DAYS", "thirty"),
    ],
)
def test_invalid_value_is_refused_naming_the_variable(tmp_path, variable, value):
    environ = {"PORTAL_DATA_DIR": str(tmp_path), "PORTAL_SECRET_KEY": SECRET, variable: value}

    with pytest.raises(ConfigError) as error:
        load_settings(environ=environ)

    assert str(error.value).startswith(variable + ":")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PORTAL_SMTP_PORT", "twenty-five"),
        ("PORTAL_SMTP_STARTTLS", "maybe"),
        ("PORTAL_SMTP_HSOT", "smtp.example.fi"),
    ],
)
def test_invalid_smtp_setting_stops_start_up_naming_the_variable(
    tmp_path, monkeypatch, variable, value
):
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PORTAL_MAIL", "smtp")
    monkeypatch.setenv(variable, value)

    with pytest.raises(ConfigError, match=variable):
        create_app(plugins=builtin_plugins())


@pytest.mark.parametrize(
    "variable", ["PORTAL_MAX_ATTACHMENT_BYTES", "PORTAL_THEMES", "PORTAL_DEBUG"]
)
def test_unknown_variable_stops_start_up_naming_it(tmp_path, monkeypatch, variable):
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv(variable, "1")

    with pytest.raises(ConfigError, match=f"^{variable}: unknown setting"):
        create_app(plugins=builtin_plugins())


def write_toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sinetti.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_toml_file_is_read_and_environment_wins_over_it(tmp_path):
    path = write_toml(
        tmp_path,
        f"""
base_url = "https://viestit.example.fi"
secret_key = "{SECRET}"
data_dir = "{tmp_path}"
allowed_recipient_domains = ["valtori.fi", "Kela.fi"]
max_attachments_bytes = 1048576
default_locale = "en"
smtp_host = "smtp.example.fi"
""",
    )
    environ = {"PORTAL_CONFIG_FILE": str(path), "PORTAL_DEFAULT_LOCALE": "sv"}

    settings = load_settings(environ=environ)

    assert settings.base_url == "https://viestit.example.fi"
    assert settings.allowed_recipient_domains == ("valtori.fi", "kela.fi")
    assert settings.max_attachments_bytes == 1048576
    assert settings.default_locale == "sv"
    assert settings.options_for("SMTP_") == {"host": "smtp.example.fi"}


@pytest.mark.parametrize("value", ["0", "-5", "true", '"lots"'])
def test_toml_value_is_validated_like_the_environment(tmp_path, value):
    path = write_toml(tmp_path, f'data_dir = "{tmp_path}"\nmax_attachments_bytes = {value}\n')

    with pytest.raises(ConfigError, match=r"^PORTAL_MAX_ATTACHMENTS_BYTES:"):
        load_settings(environ={"PORTAL_CONFIG_FILE": str(path)})


def test_unknown_key_in_toml_file_stops_start_up(tmp_path, monkeypatch):
    path = write_toml(tmp_path, f'data_dir = "{tmp_path}"\nmax_recipeints = 10\n')
    monkeypatch.setenv("PORTAL_CONFIG_FILE", str(path))

    with pytest.raises(ConfigError, match=r"^PORTAL_MAX_RECIPEINTS: unknown setting"):
        create_app(plugins=builtin_plugins())


@pytest.mark.parametrize("text", [None, "base_url = 'unterminated\n"])
def test_unreadable_toml_file_is_refused_naming_the_variable(tmp_path, text):
    path = tmp_path / "missing.toml" if text is None else write_toml(tmp_path, text)

    with pytest.raises(ConfigError, match=r"^PORTAL_CONFIG_FILE: cannot read"):
        load_settings(environ={"PORTAL_CONFIG_FILE": str(path)})


@pytest.mark.parametrize(
    ("setting", "name", "message"),
    [
        ("storage", "gcs", "PORTAL_STORAGE=gcs: no installed plugin provides the storage backend"),
        ("mail", "sendgrid", "PORTAL_MAIL=sendgrid: no installed plugin provides the mail"),
        ("sms", "twilio", "PORTAL_SMS=twilio: no installed plugin provides the SMS gateway"),
        ("theme", "kela", "PORTAL_THEME=kela: no installed plugin provides the theme"),
    ],
)
def test_configured_plugin_that_no_plugin_provides_stops_create_app(
    tmp_path, setting, name, message
):
    config: dict[str, Any] = {"data_dir": str(tmp_path), "secret_key": SECRET, setting: name}

    with pytest.raises(ConfigError) as error:
        create_app(config, plugins=builtin_plugins())

    assert str(error.value).startswith(message)
    assert "installed:" in str(error.value)


def test_missing_verification_plugin_stops_create_app(tmp_path):
    import sinetti_verification_basic

    plugins = [p for p in builtin_plugins() if p is not sinetti_verification_basic]

    with pytest.raises(ConfigError, match="verification provider 'none'"):
        create_app({"data_dir": str(tmp_path), "secret_key": SECRET}, plugins=plugins)


def test_sms_regions_default_to_finland_and_are_read_in_any_case(tmp_path):
    assert load_settings(environ={"PORTAL_DATA_DIR": str(tmp_path)}).sms_allowed_regions == ("fi",)

    settings = load_settings(
        environ={"PORTAL_DATA_DIR": str(tmp_path), "PORTAL_SMS_ALLOWED_REGIONS": "FI, se;Ax"}
    )

    assert settings.sms_allowed_regions == ("fi", "se", "ax")


@pytest.mark.parametrize("value", ["fin", "uk", "fi,xx", "eu", ",;"])
def test_unknown_sms_region_stops_start_up_naming_the_variable(tmp_path, value):
    environ = {"PORTAL_DATA_DIR": str(tmp_path), "PORTAL_SMS_ALLOWED_REGIONS": value}

    with pytest.raises(ConfigError, match=r"^PORTAL_SMS_ALLOWED_REGIONS: "):
        load_settings(environ=environ)
