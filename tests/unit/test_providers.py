"""portal.providers.Options: the one typed reader of ``PORTAL_<PREFIX>*`` provider options."""

from __future__ import annotations

import pytest

from portal.config import ConfigError
from portal.providers import Options, Provider


def options(**values: str) -> Options:
    return Options("DEMO_", values)


def test_absent_options_take_their_defaults():
    option = options()

    assert option.text("host", "localhost") == "localhost"
    assert option.integer("port", 25) == 25
    assert option.positive_float("timeout", 2.5) == 2.5
    assert option.boolean("starttls", True) is True
    assert option.choice("style", ("auto", "path"), "auto") == "auto"


def test_values_are_read_and_stripped():
    option = options(
        host=" mail.example.fi ", port=" 587", timeout="0.5", starttls="YES", style="path "
    )

    assert option.text("host") == "mail.example.fi"
    assert option.integer("port", 25) == 587
    assert option.positive_float("timeout", 10) == 0.5
    assert option.boolean("starttls", False) is True
    assert option.choice("style", ("auto", "path"), "auto") == "path"


@pytest.mark.parametrize("value", ["false", "0", "no", "No"])
def test_false_in_any_of_its_spellings(value):
    assert options(flag=value).boolean("flag", True) is False


def test_an_empty_text_or_choice_is_unset_and_a_required_one_names_its_variable():
    assert options(host="  ").text("host", "localhost") == "localhost"
    assert options(style="").choice("style", ("auto", "path"), "path") == "path"
    with pytest.raises(ConfigError, match=r"^PORTAL_DEMO_URL: required when PORTAL_X=y$"):
        options(url=" ").text("url", required="when PORTAL_X=y")


@pytest.mark.parametrize(
    ("name", "value", "read", "words"),
    [
        ("port", "x", lambda o: o.integer("port", 25), "expected a positive whole number"),
        ("port", "", lambda o: o.integer("port", 25), "expected a positive whole number"),
        ("port", "0", lambda o: o.integer("port", 25), "expected a positive whole number"),
        ("size", "3", lambda o: o.integer("size", 8, minimum=4), "expected a whole number ≥ 4"),
        ("timeout", "soon", lambda o: o.positive_float("timeout", 1), "a positive number"),
        ("timeout", "-1", lambda o: o.positive_float("timeout", 1), "a positive number"),
        ("timeout", "nan", lambda o: o.positive_float("timeout", 1), "a positive number"),
        ("timeout", "inf", lambda o: o.positive_float("timeout", 1), "a positive number"),
        ("tls", "sometimes", lambda o: o.boolean("tls", False), "expected true or false"),
        ("tls", "", lambda o: o.boolean("tls", False), "expected true or false"),
        ("style", "dns", lambda o: o.choice("style", ("a", "b", "c"), "a"), "expected a, b or c"),
    ],
)
def test_a_bad_value_names_its_variable_and_what_was_expected(name, value, read, words):
    with pytest.raises(ConfigError) as error:
        read(options(**{name: value}))

    message = str(error.value)
    assert message.startswith(f"PORTAL_DEMO_{name.upper()}: ")
    assert words in message
    assert repr(value.strip()) in message


def test_a_minimum_is_allowed():
    assert options(size="4").integer("size", 8, minimum=4) == 4
    assert options(retries="0").integer("retries", 3, minimum=0) == 0


def test_a_provider_reads_its_options_under_its_own_prefix():
    class Demo(Provider):
        name = "demo"
        settings_prefix = "DEMO_"

    provider = Demo(None, {"port": "x"})  # type: ignore[arg-type]

    assert provider.option.variable("port") == "PORTAL_DEMO_PORT"
    with pytest.raises(ConfigError, match=r"^PORTAL_DEMO_PORT: "):
        provider.option.integer("port", 25)
