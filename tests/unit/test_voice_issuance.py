"""The counter touchscreen's whole flow spoken: the issuance flow (with the
fakes of test_issuance_flow) mirrored into its real Kivy view (no window),
and the voice guide told after every change as ``PublicApp`` tells it.
Every screen the person passes is spoken, the PIN only as counts in words,
and the take-card chime comes with words."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any

import pytest

from kiosk.i18n import translate
from kiosk.issuance import texts as it
from kiosk.issuance.flow import IssuanceFlow
from kiosk.issuance.ui.view import IssuanceView
from kiosk.voice import texts as vx
from kiosk.voice.cache import AudioCache
from kiosk.voice.guide import VoiceGuide
from kiosk.voice.player import SimulatedPlayer
from kiosk.voice.prompts import ISSUANCE, count_words, has_digit
from kiosk.voice.synth import SimulatedSynth
from kiosk.voice.voices import VoiceSet
from tests.unit.issuance_fakes import make_rig

pytestmark = pytest.mark.unit


def test_voice_issuance_flow_is_spoken_screen_by_screen(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    synth = SimulatedSynth(rate=8000)
    player = SimulatedPlayer()
    guide = VoiceGuide(VoiceSet({}, fallback=synth), AudioCache(tmp_path / "cache"), player,
                       executor=_Inline())  # fmt: skip
    view = IssuanceView()
    spoken: list[tuple[str, list[str]]] = []

    kinds_seen: list[Any] = []

    def changed(flow: IssuanceFlow) -> None:
        view.update(flow)
        kinds_seen[:] = kinds_seen or list(flow.kinds)
        before = len(player.started)
        guide.show(ISSUANCE, view.screen, flow.language, lambda name: getattr(view, name, None))
        if len(player.started) > before:
            by_path = {guide.cache.path(synth.voice_id, t): t for t in synth.made}
            spoken.append((view.screen, [by_path[f] for f in player.started[-1]]))

    rig.flow.on_change = changed
    rig.to_pin()
    for digit in "1234":
        rig.flow.key(digit, rig.at())
    rig.flow.key("ok", rig.at())
    rig.run_deferred()
    rig.flow.choose_kind("juminhyo", rig.at())
    rig.flow.next(rig.at())
    rig.flow.next(rig.at())
    rig.flow.next(rig.at())
    rig.run_deferred()
    rig.flow.card_removed(rig.at())

    screens = [screen for screen, _texts in spoken]
    for screen in ("language", "place_card", "pin", "kinds", "options", "copies", "confirm",
                   "take_card", "thanks"):  # fmt: skip
        assert screen in screens, (screen, screens)
    pin_speech = [t for screen, texts in spoken if screen == "pin" for t in texts]
    assert not [t for t in pin_speech if has_digit(t)], pin_speech
    assert [count_words("en", n) for n in (1, 2, 3, 4)] == [
        texts[0] for screen, texts in spoken if screen == "pin" and len(texts) == 1
    ]
    take_card = next(texts for screen, texts in spoken if screen == "take_card")
    assert translate("en", vx.TAKE_CARD_SPOKEN) in take_card
    assert translate("en", it.TAKE_CARD_HINT) in take_card
    kinds = next(texts for screen, texts in spoken if screen == "kinds")
    offered = [(rig.flow.label(k), translate("en", it.FEE_EACH, fee=k.fee_yen)) for k in kinds_seen]
    assert offered and all(label in kinds and fee in kinds for label, fee in offered), kinds


class _Inline(Executor):
    """Runs background work at once (the synthesiser is simulated)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        done: Future[Any] = Future()
        done.set_result(fn(*args, **kwargs))
        return done
