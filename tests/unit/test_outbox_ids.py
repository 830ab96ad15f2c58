"""Event ids are random version 4 UUIDs, as ``str(uuid.uuid4())`` writes them."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from sync.outbox import new_event_id, new_event_ids


@given(st.integers(min_value=0, max_value=300))
def test_outbox_event_ids_are_distinct_version_4_uuids(count: int) -> None:
    ids = new_event_ids(count)
    assert len(ids) == count == len(set(ids))
    for text in ids:
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert str(parsed) == text  # lower-case, hyphenated: the wire's id pattern


def test_outbox_event_id_is_a_distinct_version_4_uuid() -> None:
    ids = [new_event_id() for _ in range(500)]
    assert len(set(ids)) == 500
    for text in ids:
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert str(parsed) == text
