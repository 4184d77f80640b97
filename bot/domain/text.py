"""Hygiene for text users type: what every parser (requests, chat commands) sees of it.

Invariants:
- Control characters (NUL…), lone surrogates and invisible format characters (zero-width
  spaces, bidi overrides, tag characters) never survive; the zero-width joiners do only where
  they carry meaning (the prompt: emoji sequences, Persian), never in option names or values.
- Text is NFC-normalised; option values are also NFKC-normalised, so full-width `１０` is `10`.
- Text longer than `MAX_TEXT_CHARS` is refused (`refuse_too_long`) before any other work.
"""

from __future__ import annotations

import unicodedata

from bot.domain.errors import InputError

MAX_TEXT_CHARS = 12_000  # above every model's prompt limit plus flags; bounds all later work
_JOINERS = frozenset("\u200c\u200d")  # ZWNJ / ZWJ: meaningful inside words and emoji
QUOTE_PAIRS = {'"': '"', "“": "”", "„": "“", "«": "»", "「": "」"}


def visible_text(text: str, *, keep_joiners: bool) -> str:
    """NFC text without controls, surrogates and invisible format characters.

    Tabs and line breaks become spaces (the prompt is whitespace-normalised anyway).
    """
    out = []
    for ch in unicodedata.normalize("NFC", text):
        cat = unicodedata.category(ch)
        if cat == "Cc":
            if ch in "\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85":
                out.append(" ")
        elif cat == "Cs" or (cat == "Cf" and not (keep_joiners and ch in _JOINERS)):
            continue
        else:
            out.append(ch)
    return "".join(out)


def without_joiners(text: str) -> str:
    return "".join(ch for ch in text if ch not in _JOINERS)


def value_text(token: str) -> str:
    """An option value in comparable form: no joiners, NFKC, without surrounding quotes."""
    text = unicodedata.normalize("NFKC", without_joiners(token))
    return unquote(text.strip())


def unquote(text: str) -> str:
    """`text` without one pair of surrounding quotes (any common kind)."""
    for opening, closing in (*QUOTE_PAIRS.items(), ("'", "'"), ("‘", "’")):
        inner = text[len(opening) : -len(closing)]
        if (
            len(text) >= 2
            and text.startswith(opening)
            and text.endswith(closing)
            and opening not in inner
            and closing not in inner
        ):
            return inner.strip()
    return text


def clean_prompt(text: str) -> str:
    """The prompt as sent: visible characters, single spaces, one pair of outer quotes dropped."""
    prompt = " ".join(visible_text(text, keep_joiners=True).split())
    stripped = True
    while stripped:  # until stable, so cleaning a cleaned prompt changes nothing
        stripped = False
        for opening, closing in QUOTE_PAIRS.items():
            inner = prompt[1:-1]
            if (
                len(prompt) >= 2
                and prompt[0] == opening
                and prompt[-1] == closing
                and opening not in inner
                and closing not in inner
            ):
                prompt, stripped = inner.strip(), True
    return prompt


def refuse_too_long(text: str) -> None:
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(
            f"That message is {len(text):,} characters long; the most a request may be is "
            f"{MAX_TEXT_CHARS:,}. Shorten the prompt.",
            field="prompt",
        )
