"""Widget classes the shared ``.kv`` rules build on (registered with Kivy's
Factory on import, which :mod:`kiosk.touch.app` does)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from kivy.factory import Factory
from kivy.uix.boxlayout import BoxLayout

from kiosk.touch.mixed import plain


class HideableBox(BoxLayout):  # type: ignore[misc]
    """A row that, while hidden (opacity 0), lets touches through to what
    shares its place: the access bar and the countdown banner take turns in
    the top bar. (A disabled widget would swallow them instead.)"""

    def on_touch_down(self, touch: Any) -> bool:
        return bool(self.opacity > 0 and super().on_touch_down(touch))

    def on_touch_move(self, touch: Any) -> bool:
        return bool(self.opacity > 0 and super().on_touch_move(touch))

    def on_touch_up(self, touch: Any) -> bool:
        return bool(self.opacity > 0 and super().on_touch_up(touch))


Factory.register("HideableBox", cls=HideableBox)


def fit_font(
    text: str, size: float, width: float, font_name: str = "", height: float = 0.0
) -> float:
    """``size`` (px), or smaller so that the longest word of ``text`` fits in
    ``width`` px: for buttons and keys, where a long word (a German-like
    compound, a long translation of "Clear") would otherwise be broken in
    the middle or spill over the edge. With ``height``, also so that the
    wrapped text fits that many px (a key whose label wraps to two lines:
    "Xác nhận" in larger text). Never below half of ``size``. Markup tags
    (a name in the Japanese font) are not measured."""
    text = plain(text)
    words = text.split() or [text]
    widest = max(word_width(word, round(size, 1), font_name) for word in words)
    fitted = size if widest <= width or widest <= 0 else max(size / 2, size * width / widest)
    if height > 0 and width > 0:
        return fit_height(
            text, round(fitted, 1), round(width), round(height), font_name=font_name, floor=size / 2
        )
    return fitted


@lru_cache(maxsize=1024)
def fit_height(
    text: str, size: float, width: int, height: int, *, font_name: str, floor: float
) -> float:
    """``size``, or smaller (by tenths, not below ``floor``) until ``text``
    wrapped at ``width`` px is at most ``height`` px tall."""
    while size > floor and wrapped_height(text, size, width, font_name) > height:
        size = max(floor, size * 0.9)
    return size


def wrapped_height(text: str, size: float, width: int, font_name: str) -> float:
    """Height in px of ``text`` in bold at ``size``, wrapped at ``width`` px."""
    from kivy.core.text import Label as CoreLabel

    options: dict[str, Any] = {"font_size": size, "bold": True, "text_size": (width, None)}
    if font_name:
        options["font_name"] = font_name
    label = CoreLabel(text=text, **options)
    label.refresh()
    return float(label.texture.size[1])


@lru_cache(maxsize=4096)
def word_width(word: str, size: float, font_name: str) -> float:
    """Width in px of ``word`` in bold at ``size`` (bold: the widest face)."""
    from kivy.core.text import Label as CoreLabel

    options: dict[str, Any] = {"font_size": size, "bold": True}
    if font_name:
        options["font_name"] = font_name
    return float(CoreLabel(text=word, **options).get_extents(word)[0])
