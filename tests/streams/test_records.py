"""Records on the topics: limits that keep every record publishable."""

from __future__ import annotations

import pytest

from streams.records import MAX_EVENT_BYTES, DeadLetter


class TestDeadLetter:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            pytest.param(b'{"id": "broken', '{"id": "broken', id="small_kept_whole"),
            pytest.param(b"\xff\xfe garbage", "\ufffd\ufffd garbage", id="not_utf8_replaced"),
        ],
    )
    def test_raw_text(self, raw: bytes, expected: str) -> None:
        """A small input is kept as text, undecodable bytes replaced, never an exception."""
        assert expected == DeadLetter.of(raw, "invalid event: not JSON", "social.events").raw

    def test_an_oversized_input_is_cut_and_says_so(self) -> None:
        """An input over the event limit keeps its first bytes and names its full size."""
        letter = DeadLetter.of(b"x" * (MAX_EVENT_BYTES * 16), "too big", "social.events")
        assert (True, True) == (letter.raw.endswith(f"… (cut: {MAX_EVENT_BYTES * 16} bytes in all)"),
                                len(letter.to_json()) < MAX_EVENT_BYTES + 200)
