"""The [issuance] section: defaults, validation, documentation."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from central.config import parse_config
from central.errors import CentralConfigError
from central.issuance.config import IssuanceSection, KindHoursSection, KindSection

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_issuance_config_every_key_is_documented() -> None:
    text = DOCS.read_text()
    assert "[issuance]" in text and "[[issuance.kinds]]" in text
    config = IssuanceSection()
    models: list[type[BaseModel]] = [IssuanceSection, type(config.hours), KindSection,
                                     KindHoursSection]  # fmt: skip
    for model in models:
        for key in model.model_fields:
            assert f"`{key}`" in text, f"issuance key {key} of {model.__name__} is not documented"


def test_issuance_config_defaults_and_paths(tmp_path: Path) -> None:
    config = parse_config("[issuance]\nenabled = true\n", "t", tmp_path)
    assert config.issuance.registry_file == tmp_path / "issuance" / "registry.db"
    # Without a listener section: the old [issuance.listener] file names.
    listener = config.devices.listener
    assert listener is not None
    assert listener.client_ca_file == tmp_path / "issuance" / "fleet-ca.pem"
    assert [k.fee_yen for k in config.issuance.kinds] == [200, 200, 200, 350]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[issuance]\nchallange_seconds = 60\n", "issuance.challange_seconds: unknown key"),
        ("[issuance]\ntimezone = 'Mars/Base'\n", "unknown time zone"),
        ("[issuance.hours]\nopens = '23:00'\ncloses = '06:00'\n", "closes must be after opens"),
        ("[[issuance.kinds]]\nid = 'a'\nlabel_ja = 'x'\nlabel_en = 'x'\nfee_yen = 1\n"
         "[[issuance.kinds]]\nid = 'a'\nlabel_ja = 'x'\nlabel_en = 'x'\nfee_yen = 1\n",
         "a kind id is listed twice"),
        ("[[issuance.kinds]]\nid = 'a'\nlabel_ja = 'x'\nlabel_en = 'x'\nfee_yen = 1\n"
         "options = ['kojin_bango']\n", "issuance.kinds.0.options.0"),
    ],
)  # fmt: skip
def test_issuance_config_errors_name_the_key(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(CentralConfigError) as err:
        parse_config(text, "t", tmp_path)
    assert problem in str(err.value)
