"""Characters that have no place in what a person types into a form field.

A browser never sends a NUL, an escape sequence or a lone surrogate from a text field; such
characters come from scripts, and they do harm further on: PostgreSQL refuses NUL in text (a
500 instead of an answer), terminals and log viewers obey escape sequences, and a right-to-left
override in a one-line field makes what follows it read backwards (``txt.exe`` as ``exe.txt``).
The fields refuse them with an error instead of silently changing what was typed.

- every field: C0 and C1 controls (category Cc) and surrogates (Cs, not encodable as UTF-8);
- multi-line fields (message, signature) keep line feed and tab;
- one-line fields (subject) also refuse line and paragraph separators (U+2028, U+2029) and the
  bidi embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069). Marks such as LRM and
  RLM stay: right-to-left text uses them, and they cannot reorder a whole run of text.
"""

from __future__ import annotations

import re

# Unicode's categories Cc (C0, DEL, C1), Cs (surrogates), Zl and Zp each hold exactly these code
# points (a test checks them against ``unicodedata``); a regular expression scans a message of
# a million characters in milliseconds, a loop over ``unicodedata.category`` does not.
_CONTROLS = r"\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff"
_SINGLE_LINE_ONLY = r"\t\n\u2028\u2029\u202a-\u202e\u2066-\u2069"
_MULTILINE = re.compile(f"[{_CONTROLS}]")
_SINGLE_LINE = re.compile(f"[{_CONTROLS}{_SINGLE_LINE_ONLY}]")


def has_control_characters(text: str, *, multiline: bool) -> bool:
    """Whether ``text`` holds a character a form field must refuse (see the module docstring).

    ``multiline``: the field is a text area, where line feeds and tabs are what people type.
    """
    return (_MULTILINE if multiline else _SINGLE_LINE).search(text) is not None
