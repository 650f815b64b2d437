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


# -- hostile names (issue 8): invisible, bidi and device names ----------------------------

HIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}
RESERVED_STEMS = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10))}
RESERVED_STEMS |= {f"LPT{i}" for i in range(10)}

# Text that leans on the awkward parts of Unicode: format and bidi characters, separators,
# controls, path characters, dots, spaces, combining marks and device names.
awkward_piece = st.one_of(
    st.text(max_size=8),
    st.sampled_from(
        [
            "\u202e", "\u202a", "\u2066", "\u2069", "\u200e", "\u200f", "\u061c", "\u200b",
            "\ufeff", "\u2060", "\u00ad", "\u2028", "\u2029", "\x85", "\t", "\n", "\x00",
            "\u0301", "\u0308", "/", "\\", ".", " ", "..", "CON", "nul", "Com1", "LPT9",
            "aux.txt", "e", "A", "\ud800",
        ]
    ),
)  # fmt: skip
awkward_text = st.one_of(st.text(max_size=400), st.lists(awkward_piece, max_size=30).map("".join))


def _visible_categories(name: str) -> set[str]:
    import unicodedata

    return {unicodedata.category(char) for char in name} & HIDDEN_CATEGORIES


@given(awkward_text)
def test_a_cleaned_name_has_no_hidden_characters_path_or_device_name(name):
    safe = safe_filename(name)

    assert safe
    assert len(safe) <= MAX_NAME
    assert _visible_categories(safe) == set(), repr(safe)
    assert "/" not in safe and "\\" not in safe
    assert safe.split(".", 1)[0].rstrip(" ").upper() not in RESERVED_STEMS
    safe.encode("utf-8")  # no lone surrogate survives


@given(awkward_text)
def test_cleaning_a_cleaned_name_changes_nothing(name):
    safe = safe_filename(name)

    assert safe_filename(safe) == safe


plain_ascii_name = st.from_regex(
    r"[A-Za-z0-9_\-()][A-Za-z0-9 _\-().]{0,60}[A-Za-z0-9_\-()]", fullmatch=True
).filter(lambda name: name.split(".", 1)[0].rstrip(" ").upper() not in RESERVED_STEMS)


@given(plain_ascii_name)
def test_plain_ascii_names_are_kept_as_typed(name):
    assert safe_filename(name) == name


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("rtl\u202egnp.exe", "rtlgnp.exe"),  # would read as "rtlexe.png"
        ("\u2066invoice\u2069.pdf", "invoice.pdf"),
        ("a\u200eb\u200fc\u061cd.txt", "abcd.txt"),
        ("zero\u200bwidth\u2060joiner.txt", "zerowidthjoiner.txt"),
        ("\ufeffbom.txt", "bom.txt"),
        ("line\u2028break\u2029para.txt", "line_break_para.txt"),
        ("tab\there\nnewline.txt", "tab_here_newline.txt"),
        ("nul\x00byte.txt", "nul_byte.txt"),
        ("e\u200b\u0301.txt", "\u00e9.txt"),  # the mark joins its letter once the ZWSP is gone
        ("lone\ud800surrogate.txt", "lone_surrogate.txt"),
    ],
)
def test_invisible_and_bidi_characters_are_removed_so_the_name_reads_as_typed(name, expected):
    assert safe_filename(name) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("CON", "_CON"),
        ("con", "_con"),
        ("NUL.txt", "_NUL.txt"),
        ("aux.tar.gz", "_aux.tar.gz"),
        ("Prn .txt", "_Prn .txt"),
        ("COM1", "_COM1"),
        ("lpt9.doc", "_lpt9.doc"),
        ("CON\u200b.txt", "_CON.txt"),  # hidden characters cannot hide a device name
        ("CONSOLE.txt", "CONSOLE.txt"),
        ("COM10.txt", "COM10.txt"),
        ("my CON.txt", "my CON.txt"),
    ],
)
def test_windows_device_names_are_renamed(name, expected):
    assert safe_filename(name) == expected


def test_a_long_device_name_keeps_its_prefix_and_extension():
    safe = safe_filename("CON." + "x" * 400 + ".pdf")

    assert safe.startswith("_CON.")
    assert safe.endswith(".pdf")
    assert len(safe) == MAX_NAME
