"""The child's outbox: frames grow while the sender is behind, and shrink for large records."""

from __future__ import annotations

from opentelemetry.sdk.resources import Resource

from otelkit.relay._outbox import Outbox


def _entry(body: str) -> tuple:  # type: ignore[type-arg]
    return (1, 2, 9, "INFO", body, {"k": 1}, 0, 0, 0, "s", None, None, 0)


def _frames(outbox: Outbox) -> list[int]:
    sizes = []
    while (frame := outbox.next_frame()) is not None:
        sizes.append(frame.logs)
    return sizes


def test_a_backlog_goes_out_in_frames_of_up_to_eight_batches() -> None:
    outbox = Outbox(max_buffer=100_000, batch_size=100, resource=Resource({}), child_name="c")
    for i in range(3000):
        outbox.logs.append(_entry(f"record {i}"), 2)
    assert _frames(outbox) == [100, 800, 800, 800, 500]


def test_large_records_make_smaller_frames() -> None:
    outbox = Outbox(max_buffer=1000, batch_size=100, resource=Resource({}), child_name="c")
    for _ in range(300):
        outbox.logs.append(_entry("x" * 100_000), 2)
    sizes = _frames(outbox)
    assert sizes[0] == 100 and sum(sizes) == 300
    assert max(sizes[1:]) <= 11  # about 1 MiB a frame
