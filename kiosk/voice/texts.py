"""What the voice says beyond the words on the screen: how to choose, and
the PIN progress in words (message ids, :func:`~kiosk.touch.texts.N_`).

The PIN screen's spoken sentences never contain a digit character (ADA
707.5: tones or words, never the PIN): counts and tries are words, each its
own message so every language can say them naturally.
"""

from __future__ import annotations

from kiosk.touch.keynav import TYPED
from kiosk.touch.texts import N_

CHANGE_LANGUAGE = N_("To change the language, press Language.")
CHOOSE_LANGUAGE = N_("Choose your language. Each button shows a language in its own words.")
STILL_THERE_HOW = N_("Touch the screen to continue.")
READ_AGAIN = N_("Read again")

# Check-in.
CHECKIN_HOW = N_(
    "Tap your card on the reader."
    " To enter a reservation code instead, press Enter reservation code."
)
CODE_HOW = N_("Enter the code with the keypad, then press OK. To go back, press Back.")

# Certificate issuance.
START_HOW = N_("To get a certificate, press Start.")
PIN_SPOKEN = N_("Enter your four-digit PIN with the keypad, then press OK.")
PIN_PRIVATE = N_("The digits are not shown or spoken.")
# The same words as the PIN screen's (kiosk.issuance.texts), said from here
# so that no translation of the screen's own text can bring a digit in.
WRONG_PIN = N_("Wrong PIN. Check it and enter it again.")
LAST_TRY_SPOKEN = N_(
    "This is your last try. One more wrong PIN locks the card;"
    " it can then only be unlocked at the counter."
)
KINDS_HOW = N_("Press the certificate you need. The certificates are:")
OPTIONS_HOW = N_("For each line, press Yes or No, then press Next.")
COPIES_HOW = N_("Press One more or One less, then press Next.")
CONFIRM_HOW = N_("If this is right, press Pay and print. To change it, press Back.")
TAKE_CARD_SPOKEN = N_("Take your card. The chime sounds until the card is removed.")

# Card enrolment.
ENROL_CODE_HOW = N_("Enter the code with the keypad, then press OK. To stop, press Cancel.")
ENROL_CARD_HOW = N_("Hold the card flat on the reader. To stop, press Cancel.")

# How many PIN digits are typed: index = count (0 = none), in the keypad's
# words (kiosk.touch.keynav); the fourth also says what to do next.
DIGITS_ENTERED = (*TYPED[:4], N_("All four digits entered. Press OK to confirm."))
# PIN tries left before the card locks: index = tries.
TRIES_LEFT_WORDS = (
    "",
    N_("One try left."),
    N_("Two tries left."),
    N_("Three tries left."),
)
