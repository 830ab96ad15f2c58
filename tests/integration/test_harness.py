"""The harness itself works: real mosquitto (TLS + ACL), pcscd + vpcd with a
virtual card, Kivy under Xvfb. Later issues build on these fixtures."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from cardreader.sim.cards import UidCard
from cardreader.sim.vpcd import VpcdLink
from deploy.fleet import CENTRAL_IDENTITY
from tests.harness.mosquitto import Mosquitto
from tests.harness.mqtt import connect
from tests.harness.pcscd import READER_NAMES, Pcscd
from tests.harness.services import free_port, wait_until

NOT_AUTHORIZED = 0x87


def test_mosquitto_tls_round_trip(mosquitto: Mosquitto) -> None:
    """Both ways over mutual TLS: a device's event reaches central, central's
    command reaches the device (each on a topic the ACL lets it use)."""
    device = connect(mosquitto, mosquitto.identity("dev-a"))
    central = connect(mosquitto, mosquitto.identity(CENTRAL_IDENTITY))
    try:
        events, commands = "kiosk/v1/devices/dev-a/events", "kiosk/v1/devices/dev-a/commands"
        central.subscribe(events)
        device.subscribe(commands)
        wait_until(lambda: device.publish(events, "ping") == 0, 5, "device -> central publish")
        message = central.next_message()
        assert (message.topic, message.payload) == (events, b"ping")
        wait_until(lambda: central.publish(commands, "pong") == 0, 5, "central -> device publish")
        message = device.next_message()
        assert (message.topic, message.payload) == (commands, b"pong")
    finally:
        device.close()
        central.close()


def test_mosquitto_acl_denies_other_device_topic(mosquitto: Mosquitto) -> None:
    device = connect(mosquitto, mosquitto.identity("dev-a"))
    try:
        assert device.publish("kiosk/v1/devices/dev-b/events", "forged") == NOT_AUTHORIZED
        # 0x10 "no matching subscribers" is a success too (below 0x80).
        assert device.publish("kiosk/v1/devices/dev-a/events", "[]") < 0x80
    finally:
        device.close()


def test_mosquitto_rejects_client_without_certificate_on_tls(mosquitto: Mosquitto) -> None:
    import ssl

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.tls_set(ca_certs=str(mosquitto.ca_path), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    with pytest.raises((ssl.SSLError, OSError)):
        client.connect("localhost", mosquitto.tls_port)
        # TLS 1.3 reports the rejected certificate on the first read.
        for _ in range(50):
            if client.loop(0.1) != 0:
                raise OSError("connection closed by broker")
    client.loop_stop()


def test_mosquitto_gives_up_ports_another_process_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stranger already listening on the TLS port: the broker is started
    again on fresh ports, and the ports it reports are its own."""
    stranger = socket.create_server(("127.0.0.1", 0))
    taken = stranger.getsockname()[1]
    fresh = iter([free_port(), taken] + [free_port() for _ in range(4)])
    monkeypatch.setattr("tests.harness.mosquitto.free_port", lambda: next(fresh))
    broker = Mosquitto(tmp_path / "mosquitto", devices={"dev-a": "fac-1"})
    try:
        broker.start()
        assert broker.tls_port != taken
        client = connect(broker, broker.identity("dev-a"))
        client.close()
    finally:
        broker.stop()
        stranger.close()


def test_pcscd_apdu_reaches_virtual_card(pcscd: Pcscd) -> None:
    from smartcard.System import readers

    card = UidCard(uid=bytes.fromhex("012E4CD2A1B2C3D4"))
    link = VpcdLink(card, port=pcscd.ports[0])
    link.insert()
    try:
        reader = next(r for r in readers() if str(r) == READER_NAMES[0])
        connection = reader.createConnection()
        wait_until(lambda: _try_connect(connection), 5, "card present in reader")
        data, sw1, sw2 = connection.transmit([0xFF, 0xCA, 0x00, 0x00, 0x00])
        assert bytes(data) == card.uid
        assert (sw1, sw2) == (0x90, 0x00)
        connection.disconnect()
        assert link.apdu_count >= 1
    finally:
        link.remove()
    assert "FF CA 00 00 00" in pcscd.log_text().upper()


def _try_connect(connection: object) -> bool:
    from smartcard.Exceptions import CardConnectionException, NoCardException

    try:
        connection.connect()  # type: ignore[attr-defined]
    except (NoCardException, CardConnectionException):
        return False
    return True


KIVY_JAPANESE_SCRIPT = r"""
import sys
from kivy.config import Config
Config.set("graphics", "width", "480")
Config.set("graphics", "height", "160")
from kivy.app import App
from kivy.clock import Clock
from kivy.core.text import LabelBase, DEFAULT_FONT
from kivy.core.window import Window
from kivy.uix.label import Label

LabelBase.register(DEFAULT_FONT, "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")

class Shot(App):
    def build(self):
        Window.clearcolor = (1, 1, 1, 1)
        return Label(text="住民票", font_size=96, color=(0, 0, 0, 1))
    def on_start(self):
        self.armed = False
        Window.bind(on_flip=self.shoot)
        Clock.schedule_once(self.arm, 0.5)
    def arm(self, _dt):
        # Kivy draws only on change: ask for one more frame, shoot that one.
        self.armed = True
        Window.canvas.ask_update()
    def shoot(self, *_args):
        # on_flip handlers run after drawing and before the buffer swap, so
        # the back buffer holds the finished frame.
        if self.armed:
            self.armed = False
            print("SHOT", Window.screenshot(sys.argv[1]), flush=True)
            Clock.schedule_once(lambda _dt: self.stop(), 0)

Shot().run()
"""


def test_kivy_renders_japanese_under_xvfb(
    kivy_env: dict[str, str], artifacts_dir: Path, tmp_path: Path
) -> None:
    from PIL import Image

    target = artifacts_dir / "harness-kivy-japanese.png"
    script = tmp_path / "shot_app.py"  # Kivy's App wants a source file, not -c
    script.write_text(KIVY_JAPANESE_SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), str(target)],
        env=kivy_env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    shot = Path(
        next(
            line.split(" ", 1)[1] for line in result.stdout.splitlines() if line.startswith("SHOT")
        )
    )
    image = Image.open(shot).convert("L")
    width, height = image.size
    gray = image.tobytes()  # one byte per pixel, row by row
    ink = [(x, y) for y in range(height) for x in range(width) if gray[y * width + x] < 128]
    assert len(ink) > 500, "label did not render"
    # Three different glyphs, not three identical "tofu" boxes: compare the
    # ink of each third of the text's bounding box.
    left, right = min(x for x, _ in ink), max(x for x, _ in ink)
    third = (right - left + 1) // 3
    cells = [
        frozenset(
            (x - left - i * third, y)
            for x, y in ink
            if left + i * third <= x < left + (i + 1) * third
        )
        for i in range(3)
    ]
    assert len(set(cells)) == 3, "glyphs are identical boxes: the CJK font is not in use"
