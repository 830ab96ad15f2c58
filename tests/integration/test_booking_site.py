"""The residents' booking site through FastAPI's TestClient, on a real
SQLite file, with mails to a local SMTP server: sign-in by code and by link,
used and expired links, CSRF, booking, every refusal on the page, cancelling
before and after the deadline, the enrolment code, the language."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from central.booking.i18n import Words
from central.db.engine import Database
from central.reservations.booking_rows import refused
from central.reservations.rules import BookingRules, Closure, Room
from tests.harness.booking import DOOR, FACILITY, ROOM, BookingWorld, today_plus
from tests.harness.booking_site import (
    Mailbox,
    form_token,
    sign_in,
    site_app,
    site_settings,
    smtp_server,
)

pytestmark = pytest.mark.integration
EMAIL = "aki@example.jp"


class Site:
    def __init__(self, client: TestClient, world: BookingWorld, mailbox: Mailbox) -> None:
        self.client, self.world, self.mailbox = client, world, mailbox
        self.member_id = world.member("aki")

    def book(self, start: str, minutes: int = 60, room: str = ROOM) -> httpx.Response:
        page = self.client.get("/booking/facilities")
        fields = {"start": start, "minutes": str(minutes), "csrf": form_token(page.text)}
        answer: httpx.Response = self.client.post(f"/booking/rooms/{room}/book", data=fields)
        return answer


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    db = Database(f"sqlite:///{tmp_path / 'central.db'}")
    with smtp_server() as (mailbox, port):
        app, world = site_app(db, site_settings(port))
        with TestClient(app) as client:
            yield Site(client, world, mailbox)
    db.close()


def _ask(site: Site, email: str = EMAIL) -> tuple[str, str]:
    """Ask for a sign-in; (request id, page)."""
    page = site.client.get("/booking/sign-in")
    answer = site.client.post("/booking/sign-in", data={"email": email,
                                                        "csrf": form_token(page.text)})  # fmt: skip
    assert answer.status_code == 200
    found = re.search(r'name="request_id" value="([^"]+)"', answer.text)
    assert found
    return found.group(1), answer.text


def test_site_sign_in_by_code(site: Site) -> None:
    request_id, page = _ask(site)
    _link, code = Mailbox.sign_in(site.mailbox.wait(1))
    wrong = site.client.post("/booking/sign-in/code", data={
        "request_id": request_id, "code": "000000" if code != "000000" else "111111",
        "csrf": form_token(page)})  # fmt: skip
    assert wrong.status_code == 400 and "コードが違います" in wrong.text
    done = site.client.post("/booking/sign-in/code", data={
        "request_id": request_id, "code": code, "csrf": form_token(page)})  # fmt: skip
    assert done.url.path == "/booking/facilities" and "Sports centre" in done.text
    again = site.client.post("/booking/sign-in/code", data={
        "request_id": request_id, "code": code, "csrf": form_token(done.text)})  # fmt: skip
    assert again.status_code == 400 and "このコードは使えません" in again.text


def test_site_sign_in_by_link_and_used_twice(site: Site) -> None:
    _ask(site)
    link, _code = Mailbox.sign_in(site.mailbox.wait(1))
    opened = site.client.get(link)  # opening does not use it up (mail scanners open links)
    assert opened.status_code == 200 and 'id="use-link"' in opened.text
    done = site.client.post(link, data={"csrf": form_token(site.client.get(link).text)})
    assert done.url.path == "/booking/facilities"
    used = site.client.get(link)
    assert used.status_code == 410 and "使用済み" in used.text and 'id="renew"' in used.text
    renewed = site.client.post("/booking/sign-in/renew", data={
        "token": link.rsplit("/", 1)[1], "csrf": form_token(used.text)})  # fmt: skip
    assert renewed.status_code == 200 and "メールを確認" in renewed.text
    new_link, _ = Mailbox.sign_in(site.mailbox.wait(2))
    assert new_link != link


def test_site_expired_link_offers_a_new_one(site: Site) -> None:
    _ask(site)
    link, _code = Mailbox.sign_in(site.mailbox.wait(1))
    site.world.clock.moment += timedelta(minutes=16)
    expired = site.client.get(link)
    assert (
        expired.status_code == 410 and "有効期限" in expired.text and 'id="renew"' in expired.text
    )
    posted = site.client.post(link, data={"csrf": form_token(expired.text)})
    assert posted.status_code == 410


def test_site_unknown_address_gets_the_same_page_and_no_mail(site: Site) -> None:
    _id, known = _ask(site)
    _id2, unknown = _ask(site, "nobody@example.jp")
    strip = re.compile(r'value="[^"]+"')
    assert strip.sub("", known) == strip.sub("", unknown)
    site.mailbox.wait(1)
    assert len(site.mailbox.messages) == 1


def test_site_wrong_codes_end_the_sign_in(site: Site) -> None:
    request_id, page = _ask(site)
    _link, code = Mailbox.sign_in(site.mailbox.wait(1))
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for _ in range(5):
        site.client.post(
            "/booking/sign-in/code",
            data={"request_id": request_id, "code": wrong, "csrf": form_token(page)},
        )
    late = site.client.post("/booking/sign-in/code", data={
        "request_id": request_id, "code": code, "csrf": form_token(page)})  # fmt: skip
    assert late.status_code == 400 and "/booking/facilities" not in str(late.url)


def test_site_csrf_refused(site: Site) -> None:
    page = site.client.get("/booking/sign-in")
    forged = site.client.post("/booking/sign-in", data={"email": EMAIL, "csrf": "forged"})
    assert forged.status_code == 403 and "フォームの有効期限" in forged.text
    assert form_token(page.text) != "forged"
    sign_in(site.client, site.mailbox, EMAIL)
    start = today_plus(3, 10).isoformat()
    refused_booking = site.client.post(
        f"/booking/rooms/{ROOM}/book", data={"start": start, "minutes": "60", "csrf": "x"}
    )
    assert refused_booking.status_code == 403
    assert site.world.bookings.member_bookings(site.member_id) == []


def test_site_pages_need_sign_in(site: Site) -> None:
    for path in ("/booking/", "/booking/my", "/booking/cards", f"/booking/rooms/{ROOM}"):
        answer = site.client.get(path, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/booking/sign-in"


def test_site_session_cookie_flags(site: Site) -> None:
    site.client.base_url = site.client.base_url.copy_with(scheme="https")
    _ask(site)
    link, _ = Mailbox.sign_in(site.mailbox.wait(1))
    done = site.client.post(link, data={"csrf": form_token(site.client.get(link).text)},
                            follow_redirects=False)  # fmt: skip
    cookie = done.headers["set-cookie"].lower()
    assert "booking_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    assert "secure" in cookie and "path=/booking" in cookie


def test_site_booking_shows_the_code_once(site: Site) -> None:
    sign_in(site.client, site.mailbox, EMAIL)
    day = today_plus(3, 0).date().isoformat()
    room = site.client.get(f"/booking/rooms/{ROOM}", params={"day": day})
    slot = re.search(r'href="(/booking/rooms/gym-a/book\?start=[^"]+)"', room.text)
    assert slot and "09:00–10:00" in room.text
    form = site.client.get(slot.group(1).replace("&amp;", "&"))
    assert 'value="60"' in form.text and 'value="120"' in form.text
    start = re.search(r'name="start" value="([^"]+)"', form.text)
    assert start
    done = site.client.post(f"/booking/rooms/{ROOM}/book", data={
        "start": start.group(1), "minutes": "120", "csrf": form_token(form.text)})  # fmt: skip
    code = re.search(r'id="reservation-code">(\d{6})<', done.text)
    assert done.status_code == 200 and code and "data:text/calendar" in done.text
    [booking] = site.world.bookings.member_bookings(site.member_id)
    assert booking.ends_at - booking.starts_at == timedelta(hours=2) and booking.source == "site"
    mine = site.client.get("/booking/my")
    assert f'id="booking-{booking.id}"' in mine.text and code.group(1) not in mine.text


def _refusal_cases(world: BookingWorld, member: str) -> dict[str, tuple[str, int]]:
    """Per refusal code: what to book (start, minutes), after arranging it."""
    other = world.member("other")
    world.bookings.create(ROOM, today_plus(4, 10), today_plus(4, 11), member_id=other,
                          actor="test")  # fmt: skip
    world.places.add_closure(FACILITY, Closure.whole_day(today_plus(5, 0).date(), "Asia/Tokyo",
                                                         "maintenance"), "test")  # fmt: skip
    return {
        "in_the_past": (today_plus(1, 10).isoformat(), 60),
        "too_far_ahead": (today_plus(40, 10).isoformat(), 60),
        "too_short": (today_plus(3, 10).isoformat(), 30),
        "too_long": (today_plus(3, 10).isoformat(), 180),
        "outside_opening_hours": (today_plus(3, 21).isoformat(), 60),
        "not_on_slot_boundary": (today_plus(3, 10, 30).isoformat(), 60),
        "closed": (today_plus(5, 10).isoformat(), 60),
        "slot_taken": (today_plus(4, 10).isoformat(), 60),
        "bad_time": ("next tuesday", 60),
    }


def test_site_each_refusal_is_a_page_in_plain_words(site: Site) -> None:
    sign_in(site.client, site.mailbox, EMAIL)
    words = Words("ja")
    values: dict[str, dict[str, str | int]] = {
              "too_far_ahead": {"max_days_ahead": 30}, "too_short": {"min_minutes": 60},
              "too_long": {"max_minutes": 120}, "not_on_slot_boundary": {"slot_minutes": 60},
              "closed": {"kind": "maintenance"}, "member_limit_active": {"limit": 1},
              "member_limit_hours": {"limit": 1}}  # fmt: skip
    cases = _refusal_cases(site.world, site.member_id)
    # Own booking, then the member's limits (the room's rules are tightened).
    site.book(today_plus(6, 10).isoformat())
    cases["overlap"] = (today_plus(6, 10).isoformat(), 60)
    _tighten(site.world, BookingRules(max_active_bookings=1))
    for code, (start, minutes) in cases.items():
        answer = site.book(start, minutes)
        refusal = refused(code, **values.get(code, {}))
        expected = words.refusal(refusal)
        assert answer.status_code == 409, (code, answer.text)
        assert expected in answer.text and expected != refusal.message, code
    assert expected_in(site, "member_limit_active", today_plus(7, 10).isoformat(), values)
    _tighten(site.world, BookingRules(max_hours_per_week=1))
    assert expected_in(site, "member_limit_hours", today_plus(6, 12).isoformat(), values)
    site.world.members.set_status(site.member_id, "suspended", "test")
    assert expected_in(site, "member_suspended", today_plus(7, 10).isoformat(), values)


def _tighten(world: BookingWorld, rules: BookingRules) -> None:
    world.places.put_room(Room(id=ROOM, facility_id=FACILITY, door_id=DOOR, name="Gym A",
                               rules=rules, fee_per_slot_yen=500), "test")  # fmt: skip


def expected_in(site: Site, code: str, start: str, values: dict[str, dict[str, str | int]]) -> bool:
    answer = site.book(start)
    text = Words("ja").refusal(refused(code, **values.get(code, {})))
    return answer.status_code == 409 and text in answer.text


def test_site_cancel_before_the_deadline(site: Site) -> None:
    sign_in(site.client, site.mailbox, EMAIL)
    site.book(today_plus(4, 10).isoformat())
    [booking] = site.world.bookings.member_bookings(site.member_id)
    mine = site.client.get("/booking/my")
    assert f'id="cancel-{booking.id}"' in mine.text
    done = site.client.post(
        f"/booking/my/{booking.id}/cancel", data={"csrf": form_token(mine.text)}
    )
    assert done.url.path == "/booking/my" and "予約をキャンセルしました" in done.text
    assert site.world.bookings.get(booking.id).status == "cancelled"
    again = site.client.post(
        f"/booking/my/{booking.id}/cancel", data={"csrf": form_token(mine.text)}
    )
    assert again.status_code == 409 and "すでにキャンセル" in again.text


def test_site_cancel_after_the_deadline(site: Site) -> None:
    sign_in(site.client, site.mailbox, EMAIL)
    new = site.world.bookings.create(ROOM, today_plus(2, 10), today_plus(2, 11),
                                     member_id=site.member_id, actor="test")  # fmt: skip
    mine = site.client.get("/booking/my")
    assert f'id="cancel-{new.booking.id}"' not in mine.text
    deadline = Words("ja").moment(today_plus(1, 10), today_plus(1, 10).tzinfo)  # type: ignore[arg-type]
    assert f"キャンセルできるのは{deadline}まででした" in mine.text
    late = site.client.post(f"/booking/my/{new.booking.id}/cancel",
                            data={"csrf": form_token(mine.text)})  # fmt: skip
    assert late.status_code == 409 and "キャンセルは開始の24時間前までです" in late.text
    assert site.world.bookings.get(new.booking.id).status == "booked"


def test_site_other_members_booking_is_not_found(site: Site) -> None:
    other = site.world.member("other")
    theirs = site.world.bookings.create(ROOM, today_plus(4, 10), today_plus(4, 11),
                                        member_id=other, actor="test")  # fmt: skip
    sign_in(site.client, site.mailbox, EMAIL)
    page = site.client.get("/booking/my")
    answer = site.client.post(f"/booking/my/{theirs.booking.id}/cancel",
                              data={"csrf": form_token(page.text)})  # fmt: skip
    assert answer.status_code == 404 and "text/html" in answer.headers["content-type"]
    assert site.world.bookings.get(theirs.booking.id).status == "booked"


def test_site_enrolment_code_page(site: Site) -> None:
    sign_in(site.client, site.mailbox, EMAIL)
    cards = site.client.get("/booking/cards")
    assert "登録済みのカードはありません" in cards.text
    issued = site.client.post("/booking/cards/code", data={"csrf": form_token(cards.text)})
    code = re.search(r'id="enrolment-code">(\d{8})<', issued.text)
    assert issued.status_code == 200 and code and "まで、1回だけ有効です" in issued.text
    ticket = site.world.enrolment.redeem("door-1", code.group(1))
    assert ticket.ticket


def test_site_language_from_header_switch_and_member(site: Site) -> None:
    english = site.client.get("/booking/sign-in", headers={"Accept-Language": "en-GB,en;q=0.8"})
    assert '<html lang="en">' in english.text and "Send me a sign-in link" in english.text
    switched = site.client.get("/booking/sign-in?lang=ja", headers={"Accept-Language": "en"})
    assert (
        '<html lang="ja">' in switched.text and "booking_lang=ja" in switched.headers["set-cookie"]
    )
    remembered = site.client.get("/booking/sign-in", headers={"Accept-Language": "en"})
    assert '<html lang="ja">' in remembered.text
    sign_in(site.client, site.mailbox, EMAIL)
    site.client.get("/booking/facilities?lang=en")
    assert site.world.members.get(site.member_id).language == "en"  # the mails follow
    assert '<html lang="en">' in site.client.get("/booking/my").text


def test_site_language_from_accept_language_maps_chinese_and_lists_every_language(
    site: Site,
) -> None:
    from foundation.languages import LANGUAGES

    page = site.client.get("/booking/sign-in", headers={"Accept-Language": "zh-TW,en;q=0.5"})
    assert '<html lang="zh-Hant">' in page.text
    for language in LANGUAGES:  # the switch: every language in its own name
        assert f'lang="{language.code}" hreflang="{language.code}"' in page.text, language.code
        assert f">{language.name}</a>" in page.text, language.name
    easy = site.client.get("/booking/sign-in?lang=ja-x-easy")
    assert '<html lang="ja-x-easy">' in easy.text


def test_site_self_registration_off_by_default(site: Site) -> None:
    assert site.client.get("/booking/register").status_code == 404
    assert "窓口でお申し込み" in site.client.get("/booking/sign-in").text


def test_site_self_registration_when_on(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'central.db'}")
    with smtp_server() as (mailbox, port):
        app, world = site_app(db, site_settings(port, self_registration=True))
        with TestClient(app) as client:
            page = client.get("/booking/register")
            done = client.post("/booking/register", data={
                "name": "Ren", "email": "Ren@Example.jp", "language": "en",
                "csrf": form_token(page.text)})  # fmt: skip
            assert done.status_code == 200
            member = world.members.find(email="ren@example.jp")
            assert member.language == "en"
            assert "Your sign-in code" in str(mailbox.wait(1)["Subject"])
    db.close()
