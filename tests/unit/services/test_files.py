"""portal.services.files: safe file names, de-duplication and sizes as people read them."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.i18n import locale_context
from portal.services.files import MAX_NAME, format_size, safe_filename, unique_names

UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')


@given(st.text(max_size=400))
def test_any_name_becomes_a_safe_non_empty_file_name(name):
    safe = safe_filename(name)

    assert safe
    assert not UNSAFE.search(safe)
    assert len(safe) <= MAX_NAME
    assert safe not in (".", "..")
    assert safe == safe.strip(" .") or safe == "attachment"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\liisa\\hakemus.pdf", "hakemus.pdf"),
        ('a:b?"c|d.txt', "a_b__c_d.txt"),
        ("  .hidden. ", "hidden"),
        ("", "attachment"),
        ("...", "attachment"),
        ("A\u0308iti.txt", "Äiti.txt"),  # decomposed Ä is normalised to NFC
    ],
)
def test_known_names_are_sanitised(name, expected):
    assert safe_filename(name) == expected


def test_long_name_keeps_its_extension():
    safe = safe_filename("x" * 500 + ".pdf")

    assert len(safe) == MAX_NAME
    assert safe.endswith("x.pdf")


@given(
    st.lists(st.sampled_from(["a.pdf", "A.PDF", "a (2).pdf", "b", "B", ".pdf", "a"]), max_size=12)
)
def test_unique_names_are_unique_ignoring_case_and_keep_order(names):
    unique = unique_names(names)

    assert len(unique) == len(names)
    assert len({name.lower() for name in unique}) == len(unique)
    for original, renamed in zip(names, unique, strict=True):
        stem = original.rpartition(".")[0] or original
        assert renamed == original or renamed.startswith(stem + " (")


def test_duplicates_are_numbered_before_the_extension():
    assert unique_names(["a.pdf", "a.pdf", "A.pdf", "notes", "notes"]) == [
        "a.pdf",
        "a (2).pdf",
        "A (3).pdf",
        "notes",
        "notes (2)",
    ]


@pytest.mark.parametrize(
    ("size", "locale", "expected"),
    [
        (0, "en", "0\u00a0B"),
        (1023, "en", "1,023\u00a0B"),
        (1536, "en", "1.5\u00a0kB"),
        (1536, "fi", "1,5\u00a0kB"),
        (400 * 1024 * 1024, "sv", "400\u00a0MB"),
        (5 * 1024**4, "en", "5,120\u00a0GB"),
        (int(48.8 * 1024), "en", "48.8\u00a0kB"),
    ],
)
def test_sizes_are_formatted_in_the_users_locale(size, locale, expected):
    with locale_context(locale):
        assert format_size(size) == expected
