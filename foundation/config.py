"""Configuration loading and validation shared by every configuration of the
product (device, central, deploy): a TOML file, validated into a typed
pydantic model whose unknown keys are errors, every problem named by its key
and what was expected.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, ValidationError


class Section(BaseModel):
    """Base of every configuration section: unknown keys are errors, values
    frozen, and TOML's ``inf``/``nan`` are no number of seconds or items."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


ConfigErrorType = Callable[[str, list[str]], Exception]
M = TypeVar("M", bound=BaseModel)


def known_zone(name: str) -> str:
    """``name`` if it is an IANA time zone, else ValueError (a validator for
    every ``timezone`` key: an unknown zone, or one naming a folder such as
    ``Asia``, would otherwise stop a service later, at its first date)."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone {name!r} (an IANA name such as Asia/Tokyo)") from None
    return name


def read_config_file(file: Path, error: ConfigErrorType) -> str:
    """A configuration file's text, or ``error(file, [what is wrong])``.

    Shared by every configuration of the product (device, central)."""
    try:
        return file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(str(file), ["file not found: create it or pass --config PATH"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(str(file), [f"cannot be read: {exc}"]) from None


def validate_toml(text: str, source: str, model: type[M], error: ConfigErrorType, docs: str) -> M:
    """TOML text validated into ``model``; every problem named by its key."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(source, [f"not valid TOML: {exc}"]) from None
    except RecursionError:  # tomllib recurses once per nested array or table
        raise error(source, ["not valid TOML: arrays or tables nested too deeply"]) from None
    return validate_data(raw, source, model, error, docs)


def validate_data(
    raw: dict[str, Any], source: str, model: type[M], error: ConfigErrorType, docs: str
) -> M:
    """Parsed TOML (or TOML with settings laid over it) validated into
    ``model``, with the same messages as :func:`validate_toml`."""
    try:
        return model.model_validate({**raw, "source": source})
    except ValidationError as exc:
        raise error(source, [_describe(err, docs) for err in exc.errors()]) from None


def _describe(err: Any, docs: str) -> str:
    key = ".".join(str(part) for part in err["loc"]) or "(top level)"
    if err["type"] == "extra_forbidden":
        return f"{key}: unknown key (check the spelling against {docs})"
    if err["type"] == "missing":
        return f"{key}: required key is missing"
    message = str(err["msg"]).removeprefix("Value error, ")
    return f"{key}: {message} (got {err.get('input')!r})"
