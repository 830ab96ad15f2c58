"""The words of the issuance screens (message ids for the Babel catalogues).

Each refusal or failure has its own notice: a title (what happened), a body
(details) and a next step (what to do), never only a colour.
"""

from __future__ import annotations

from dataclasses import dataclass

from kiosk.touch.texts import N_

# The English names of central's default certificate kinds and options
# (central/issuance/config.py, service.py), as message ids: a language's
# catalogue translates them, and the screens show the translation beside the
# Japanese name (the Japanese catalogue holds the Japanese name). A kind
# configured with another name shows its label_en beside the Japanese one.
CATALOGUE_LABELS = (
    N_("Certificate of residence"),
    N_("Seal registration certificate"),
    N_("Income and tax certificate"),
    N_("Family register (full)"),
    N_("Who is listed"),
    N_("Only me"),
    N_("Whole household"),
    N_("Show the head of household and relationship"),
    N_("Show the registered domicile (honseki) and its head"),
)

SERVICE_TITLE = N_("Certificate issuance")
START = N_("Start")
PLACE_CARD = N_("Place your My Number Card on the reader")
PLACE_CARD_HINT = N_("Leave it there until the end. You will need your 4-digit PIN.")
READING_CARD = N_("Reading your card…")
ENTER_PIN = N_("Enter your 4-digit PIN")
PIN_HINT = N_("The PIN for identity checks (利用者証明用). Digits are not shown or spoken.")
TRIES_LEFT = N_("Tries left: {tries}")
LAST_TRY = N_(
    "Warning: this is your last try. One more wrong PIN locks the card;"
    " it can then only be unlocked at the counter."
)
WRONG_PIN = N_("Wrong PIN. Check it and enter it again.")
VERIFYING = N_("Checking your PIN and your record…")
CHOOSE_KIND = N_("Choose a certificate")
FEE_EACH = N_("{fee} yen each")
OPTIONS = N_("What should the certificate show?")
OPTIONS_HINT = N_("Only what you switch on is printed. When unsure, leave it off.")
ON = N_("Yes")
OFF = N_("No")
COPIES = N_("How many copies?")
CONFIRM = N_("Please check your order")
CONFIRM_LINE = N_("{kind}: {copies} × {fee} yen")
TOTAL = N_("Total: {total} yen")
PAY_AND_PRINT = N_("Pay and print")
ORDERING = N_("Preparing your order…")
PAYING = N_("Please pay {total} yen on the payment terminal")
ISSUING = N_("Issuing your certificate…")
PRINTING = N_("Printing… please wait here")
PRINTING_HINT = N_("This can take up to two minutes. Do not leave the machine.")
TAKE_CARD = N_("Take your card")
TAKE_CARD_HINT = N_("Please take your My Number Card from the reader.")
TAKE_CERTIFICATES = N_("Take your certificates from the tray.")
THANK_YOU = N_("Thank you")
THANK_YOU_BODY = N_("Please check your certificates before you leave.")
CANCEL = N_("Cancel")
NEXT = N_("Next")
PLUS = N_("One more")
MINUS = N_("One less")


@dataclass(frozen=True)
class Notice:
    title: str
    body: str
    next_step: str


_COUNTER = N_("Please go to the counter. Bring this card.")
_NOTHING_CHARGED = N_("Nothing was charged.")
_ASK_COUNTER = N_("Please ask at the counter.")

NOTICES: dict[str, Notice] = {
    "card_expired": Notice(
        N_("Your card's certificate has expired"),
        N_("The certificate for identity checks on this card is no longer valid."),
        N_("Renew it at the city office counter (free of charge)."),
    ),
    "pin_blocked": Notice(
        N_("Your PIN is locked"),
        N_("Too many wrong PINs were entered on this card (at any service)."),
        _COUNTER,
    ),
    "not_mynumber": Notice(
        N_("This card cannot be used"),
        N_("Certificates need a My Number Card."),
        N_("Take this card and place your My Number Card."),
    ),
    "card_unreadable": Notice(
        N_("The card could not be read"),
        N_("Place the card flat on the reader and do not move it."),
        N_("Take the card and start again."),
    ),
    "card_removed": Notice(
        N_("The card was removed"),
        N_("Your entries have been cleared. Nothing was charged."),
        N_("Start again if you need a certificate."),
    ),
    "cancelled": Notice(
        N_("Cancelled"),
        N_("Your entries have been cleared. Nothing was charged."),
        N_("Start again if you need a certificate."),
    ),
    "certificate_revoked": Notice(
        N_("This card's certificate cannot be used"),
        N_("The certificate for identity checks has been revoked."),
        _COUNTER,
    ),
    "resident_unknown": Notice(
        N_("No record found"),
        N_("Certificates for this card cannot be issued by this city hall."),
        _ASK_COUNTER,
    ),
    "use_counter": Notice(
        N_("Please use the counter"),
        N_("Certificates for you cannot be issued at this machine."),
        N_("The staff at the counter will help you."),
    ),
    "outside_hours": Notice(
        N_("Closed now"),
        N_("Certificates can be issued again from {opens_at}."),
        N_("Please come back then, or ask at the counter."),
    ),
    "central_unreachable": Notice(
        N_("Service temporarily unavailable"),
        N_("The city hall system does not answer. Nothing was charged."),
        N_("Please try again later, or ask at the counter."),
    ),
    "payment_declined": Notice(
        N_("Payment declined"),
        _NOTHING_CHARGED,
        N_("Try another payment method, or ask at the counter."),
    ),
    "payment_unavailable": Notice(
        N_("The payment terminal is not available"),
        _NOTHING_CHARGED,
        _ASK_COUNTER,
    ),
    "printer_out_of_paper": Notice(
        N_("The printer is out of paper"), _NOTHING_CHARGED, _ASK_COUNTER
    ),
    "printer_jammed": Notice(N_("The printer is jammed"), _NOTHING_CHARGED, _ASK_COUNTER),
    "printer_offline": Notice(N_("The printer is not available"), _NOTHING_CHARGED, _ASK_COUNTER),
    "print_failed": Notice(
        N_("Printing failed"),
        N_("Your payment of {total} yen has been refunded."),
        _ASK_COUNTER,
    ),
    "payment_not_returned": Notice(
        N_("Please see the staff"),
        N_("Your payment of {total} yen could not be returned automatically."),
        N_("Staff at the counter will return it. Nothing else is needed from you."),
    ),
    "service_error": Notice(
        N_("The certificate could not be issued"),
        N_("Nothing was charged, or the payment was cancelled."),
        _ASK_COUNTER,
    ),
}
