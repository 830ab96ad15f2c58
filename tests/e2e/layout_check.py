"""Checks one laid-out Kivy screen from its widget geometry (no pixels).

:func:`check_tree` walks the visible widgets under a root and returns the
violations, each a short readable line naming the widget (its kv id where it
has one): text whose texture does not fit its box (1 px allowed), buttons
smaller than the touch target at this panel's density, widgets outside the
window, and text or buttons overlapping each other. A widget inside a scroll
view counts as inside the window when it is inside the scroll view's content
(the person can scroll to it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kivy.core.window import Window
from kivy.metrics import mm
from kivy.uix.button import Button
from kivy.uix.label import Label
from kivy.uix.scrollview import ScrollView

SLACK = 1.0  # px


@dataclass
class Box:
    name: str
    x: float
    y: float
    right: float
    top: float
    button: bool
    clip: tuple[float, float, float, float] | None  # the scroll view's window box

    def overlaps(self, other: Box) -> bool:
        return (
            min(self.right, other.right) - max(self.x, other.x) > SLACK
            and min(self.top, other.top) - max(self.y, other.y) > SLACK
        )


@dataclass
class Report:
    violations: list[str] = field(default_factory=list)
    widgets: int = 0
    scrolls: bool = False  # some content is taller than its scroll view


def widget_name(widget: Any, ids: dict[int, str]) -> str:
    label = ids.get(id(widget)) or type(widget).__name__
    text = getattr(widget, "text", "")
    return f"{label}({text[:24]!r})" if text else label


def collect_ids(root: Any) -> dict[int, str]:
    """kv ids of every rule under ``root`` (ids of nested rules too)."""
    names: dict[int, str] = {}
    stack = [root]
    while stack:
        widget = stack.pop()
        for name, target in getattr(widget, "ids", {}).items():
            names.setdefault(id(target), name)
        stack.extend(widget.children)
    return names


def check_tree(root: Any, target_mm: float) -> Report:
    report = Report()
    ids = collect_ids(root)
    boxes: list[Box] = []
    _walk(root, 1.0, None, ids, boxes, report, target_mm)
    for i, first in enumerate(boxes):
        for second in boxes[i + 1 :]:
            if first.overlaps(second):
                report.violations.append(f"overlap: {first.name} and {second.name}")
    return report


Rect = tuple[float, float, float, float]


def _walk(widget: Any, opacity: float, clip: Rect | None, ids: dict[int, str],
          boxes: list[Box], report: Report, target_mm: float) -> None:  # fmt: skip
    opacity *= widget.opacity
    if opacity <= 0.01 or widget.width <= 0 or widget.height <= 0:
        return  # not shown: an empty slot or a hidden banner
    x, y = widget.to_window(widget.x, widget.y)
    right, top = x + widget.width, y + widget.height
    if isinstance(widget, ScrollView):
        clip = (x, y, right, top)
        content = widget.children[0] if widget.children else None
        if content is not None and content.height > widget.height + SLACK:
            report.scrolls = True
    if isinstance(widget, Label):
        report.widgets += 1
        _check_label(widget, (x, y, right, top), clip, ids, boxes, report, target_mm)
        return
    for child in widget.children:
        _walk(child, opacity, clip, ids, boxes, report, target_mm)


def _check_label(widget: Any, box: tuple[float, float, float, float],
                 clip: tuple[float, float, float, float] | None, ids: dict[int, str],
                 boxes: list[Box], report: Report, target_mm: float) -> None:  # fmt: skip
    x, y, right, top = box
    name = widget_name(widget, ids)
    is_button = isinstance(widget, Button) and not widget.disabled
    if not widget.text and not is_button:
        return
    tw, th = widget.texture_size
    if tw > widget.width + SLACK or th > widget.height + SLACK:
        report.violations.append(
            f"clipped: {name} text {tw:.0f}x{th:.0f} px in {widget.width:.0f}x{widget.height:.0f}"
        )
    if is_button:
        w_mm, h_mm = widget.width / mm(1), widget.height / mm(1)
        if round(w_mm, 1) < target_mm or round(h_mm, 1) < target_mm:
            report.violations.append(f"small: {name} {w_mm:.1f}x{h_mm:.1f} mm")
    if clip is None:
        if x < -SLACK or y < -SLACK or right > Window.width + SLACK or top > Window.height + SLACK:
            report.violations.append(
                f"outside: {name} at {x:.0f},{y:.0f}-{right:.0f},{top:.0f}"
                f" in {Window.width}x{Window.height}"
            )
        boxes.append(Box(name, x, y, right, top, is_button, None))
    else:
        # In a scroll view: compare only what is on screen.
        cx, cy, cr, ct = clip
        vx, vy, vr, vt = max(x, cx), max(y, cy), min(right, cr), min(top, ct)
        if vr > vx and vt > vy:
            boxes.append(Box(name, vx, vy, vr, vt, is_button, clip))
