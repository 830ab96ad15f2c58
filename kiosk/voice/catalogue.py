"""Everything the screens may say, enumerated for the cache build: every
message of every kiosk catalogue in every language, with the placeholders
whose values are finite and known on this device filled in (PIN tries,
copies, rooms, unlock seconds, waiting minutes). Messages whose values are
not known ahead (a time of day, a fee from central) are synthesised when
first shown, in the background.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

from babel.messages.pofile import read_po

from kiosk.i18n import CATALOGUES, available_languages, translate
from kiosk.voice.prompts import expand

# Values every device knows (the flows' own limits).
COMMON_VALUES: Mapping[str, Sequence[object]] = {
    "tries": (1, 2, 3),
    "copies": tuple(range(1, 11)),
    "minutes": tuple(range(1, 11)),
}


@functools.cache
def message_ids() -> tuple[str, ...]:
    """Every message id of the kiosk's catalogues (union over languages)."""
    found: dict[str, None] = {}
    for language in available_languages():
        with CATALOGUES.po_file(language).open("rb") as source:
            catalog = read_po(source)  # only the ids: no locale (ja-x-easy is none)
        for message in catalog:
            if message.id and isinstance(message.id, str):
                found.setdefault(message.id)
    return tuple(found)


def texts_for(language: str, values: Mapping[str, Sequence[object]]) -> list[str]:
    """Every text the screens may say in ``language`` that can be known ahead."""
    known = {**COMMON_VALUES, **values}
    said: dict[str, None] = {}
    for message in message_ids():
        if "{" not in message:
            said.setdefault(translate(language, message))
            continue
        for combo in expand(message, known):
            try:
                said.setdefault(translate(language, message, **combo))
            except (KeyError, IndexError, ValueError):
                continue  # a translation with a placeholder the id lacks
    said.update({str(n): None for n in known["copies"]})
    return [text.strip() for text in said if text.strip()]
