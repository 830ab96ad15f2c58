"""Eligibility and certificate lines of the reference registry (pure rules)."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import date
from pathlib import Path

from central.issuance.config import IssuanceSection, KindSection
from central.issuance.registry.adapter import (
    NOT_RECORDED,
    Resident,
    age_on,
    certificate_lines,
    decide,
)
from central.issuance.registry.sqlite import SqliteRegistry, demo_household, synthetic_ref

TODAY = date(2025, 6, 11)
SETTINGS = IssuanceSection()


def kind(kind_id: str) -> KindSection:
    found = SETTINGS.kind(kind_id)
    assert found is not None
    return found


HEAD, SPOUSE = demo_household(synthetic_ref("t"))


def reason(
    resident: Resident, kind_id: str = "juminhyo", household: list[Resident] | None = None
) -> str:
    members = household if household is not None else [resident]
    return decide(resident, members, kind(kind_id), TODAY, 15).reason


def test_eligibility_the_demo_resident_may_order_every_kind() -> None:
    for k in SETTINGS.kinds:
        assert decide(HEAD, [HEAD, SPOUSE], k, TODAY, 15).eligible, k.id


def test_eligibility_refusals_have_coarse_reasons() -> None:
    change = dataclasses.replace
    assert reason(change(HEAD, birth_date=date(2010, 6, 12))) == "under_age"
    assert reason(change(HEAD, birth_date=date(2010, 6, 11))) == "ok"  # 15 today
    assert reason(change(HEAD, status="moved_out")) == "moved"
    assert reason(change(HEAD, status="moving_out")) == "moved"
    assert reason(change(HEAD, status="deceased")) == "deceased"
    assert reason(change(HEAD, support_measures=True)) == "support_measures"
    assert reason(change(HEAD, moved_in=TODAY)) == "moved"
    assert reason(HEAD, household=[HEAD, change(SPOUSE, status="moving_out")]) == "household_moving"
    assert reason(change(HEAD, honseki_here=False), "koseki_zenbu") == "honseki_elsewhere"
    assert reason(change(HEAD, honseki_here=False), "juminhyo") == "ok"
    assert reason(change(HEAD, seal_number=""), "inkan") == "no_seal"


def test_age_on_birthday_boundaries() -> None:
    assert age_on(date(2000, 2, 29), date(2015, 2, 28)) == 14
    assert age_on(date(2000, 2, 29), date(2015, 3, 1)) == 15


def test_lines_juminhyo_least_data_by_default() -> None:
    chosen = {"household": "self", "relationship": "false", "honseki": "false"}
    lines = certificate_lines(HEAD, [HEAD, SPOUSE], kind("juminhyo"), chosen, 2025)
    text = "\n".join(lines)
    assert HEAD.name in text and SPOUSE.name not in text
    assert "続柄" not in text and "世帯主" not in text and "本籍" not in text


def test_lines_juminhyo_household_relationship_and_honseki_when_chosen() -> None:
    chosen = {"household": "all", "relationship": "true", "honseki": "true"}
    lines = certificate_lines(HEAD, [HEAD, SPOUSE], kind("juminhyo"), chosen, 2025)
    text = "\n".join(lines)
    assert SPOUSE.name in text and "続柄　妻" in text and f"世帯主　{HEAD.name}" in text
    assert f"本籍　{HEAD.honseki}" in text and "筆頭者" in text


def test_lines_other_kinds() -> None:
    assert any("1,024" in line or "A-1024" in line for line in
               certificate_lines(HEAD, [HEAD], kind("inkan"), {}, 2025))  # fmt: skip
    tax = "\n".join(certificate_lines(HEAD, [HEAD], kind("shotoku_kazei"), {}, 2025))
    assert "2025年度" in tax and "4,200,000円" in tax
    koseki = "\n".join(certificate_lines(HEAD, [HEAD], kind("koseki_zenbu"), {}, 2025))
    assert "本籍" in koseki and "筆頭者" in koseki


def test_registry_lines_never_invent_sex_or_head_of_household() -> None:
    unknown = dataclasses.replace(HEAD, sex="", relationship="")
    lines = "\n".join(certificate_lines(unknown, [unknown], kind("juminhyo"),
                                         {"relationship": "true"}, 2025))  # fmt: skip
    assert f"性別　{NOT_RECORDED}" in lines and f"世帯主　{NOT_RECORDED}" in lines
    assert f"続柄　{NOT_RECORDED}" in lines and "男" not in lines and HEAD.name in lines


def test_registry_reference_is_keyed(tmp_path: Path) -> None:
    """Whoever holds the references and a list of candidates cannot match
    them: the reference of the same person differs under another key."""
    one, other = SqliteRegistry(tmp_path / "a.db"), SqliteRegistry(tmp_path / "b.db")
    try:
        person = ("試験　次郎", date(1990, 1, 2), "H9")
        ref = one.reference_for(*person)
        assert ref != other.reference_for(*person)
        assert one.reference_key != other.reference_key
        unkeyed = "R" + hashlib.sha256("試験　次郎|1990-01-02|H9".encode()).hexdigest()
        assert ref[1:12] != unkeyed[1:12].upper()
    finally:
        one.close()
        other.close()
    again = SqliteRegistry(tmp_path / "a.db")  # the key stays with its registry
    try:
        assert again.reference_for(*person) == ref
    finally:
        again.close()
