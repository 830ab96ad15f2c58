"""Check of the kiosk's translations: every offered language complete.

A message missing from a language shows in Japanese on the touchscreen
(``foundation.i18n``); this check names the languages and how many messages
they lack so that the translations can be completed before people see it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from deploy.checks import CheckResult, DoctorContext, ok, warn
from foundation.i18n import Catalogues
from foundation.languages import DEFAULT_LANGUAGE, SOURCE_LANGUAGE

KIOSK_DOMAIN = "kiosk"


def kiosk_locale_dir() -> Path | None:
    """The installed kiosk's ``locale`` folder, found without importing the
    kiosk (deploy imports no kiosk code)."""
    spec = importlib.util.find_spec("kiosk")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "locale"


def check_translations(_ctx: DoctorContext, locale_dir: Path | None = None) -> CheckResult:
    locale_dir = locale_dir or kiosk_locale_dir()
    if locale_dir is None or not locale_dir.is_dir():
        return warn(
            "translations",
            "the kiosk's catalogues were not found",
            "reinstall the release (the kiosk package ships kiosk/locale)",
        )
    catalogues = Catalogues(locale_dir, KIOSK_DOMAIN, DEFAULT_LANGUAGE)
    offered = catalogues.languages()
    lacking = {
        language: len(missing)
        for language in offered
        if language not in (DEFAULT_LANGUAGE, SOURCE_LANGUAGE)
        and (missing := catalogues.missing(language))
    }
    if lacking:
        listed = ", ".join(f"{language} lacks {count}" for language, count in lacking.items())
        return warn(
            "translations",
            f"incomplete catalogues (shown in Japanese where missing): {listed}",
            "complete kiosk/locale/<language>/LC_MESSAGES/kiosk.po (docs/translation.md)"
            " and install the release again",
            missing=lacking,
        )
    return ok("translations", f"{len(offered)} language(s) complete: {', '.join(offered)}")
