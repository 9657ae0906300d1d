"""Which Redis lists hold a broker queue's messages."""

from __future__ import annotations

from shared.reads.queue_lengths import queue_keys


def test_queue_keys_include_kombus_priority_lists() -> None:
    assert queue_keys("tokens") == [
        "tokens",
        "tokens\x06\x163",
        "tokens\x06\x166",
        "tokens\x06\x169",
    ]
