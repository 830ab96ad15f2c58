"""The words both touchscreens show (message ids for the Babel catalogues).

Message ids are English and marked with :func:`N_` so ``pybabel extract -k
N_`` finds them; the words of one flow live with it
(:mod:`kiosk.checkin.messages`, :mod:`kiosk.issuance.texts`).
"""

from __future__ import annotations


def N_(message: str) -> str:  # the gettext convention for "mark for extraction only"
    return message


LARGER_TEXT = N_("Larger text")
NORMAL_TEXT = N_("Normal text")
LANGUAGE = N_("Language")
OK = N_("OK")
CLEAR = N_("Clear")
BACK = N_("Back")
CONTINUE = N_("Continue")
RETURNING_IN = N_("Returning to the start in {seconds} s")
STILL_THERE = N_("Are you still there?")
# The accessibility bar on every screen (kiosk/touch/widgets.kv, AccessBar).
HIGH_CONTRAST = N_("High contrast")
MORE_TIME = N_("More time")
READ_AGAIN = N_("Read again")
CALL_STAFF = N_("Call staff")
