"""What a relay child has to send, what it dropped, and the frames it makes of them.

The :class:`Outbox` of a :class:`~otelkit.relay.ChildPipeline` holds the two bounded
severity buffers (log records, spans), the short queue of encoded metric batches and every
count the pipeline's conservation rests on: records sent, dropped by the buffers, found
unencodable, given up at exit; drops already reported to the host. Only the sender thread
takes frames out (:meth:`Outbox.next_frame`); the hot path only appends to the buffers.
The pipeline owns the threads, the link and the flush and exit protocol.
"""

from __future__ import annotations

import os
import sys
import threading
import uuid
from collections import deque
from typing import Any, NamedTuple

from opentelemetry.sdk._logs import ReadWriteLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan

from otelkit._errors import report_internal_error
from otelkit.relay._buffer import SeverityBuffer
from otelkit.relay._dropfile import write_drop_file
from otelkit.relay._encode import (
    LogEntry,
    encode_log_request,
    encode_resource,
    encode_span_request,
    entry_from_sdk,
)
from otelkit.relay._wire import FRAME_LOGS, FRAME_METRICS, FRAME_SPANS, encode_drops, encode_frame

__all__ = ["CHILD_NAME_ATTRIBUTE", "Frame", "LogItem", "Outbox", "Progress"]

CHILD_NAME_ATTRIBUTE = "otelkit.relay.child"
_MAX_METRIC_BATCHES = 32  # collections waiting to be sent; a slow host costs the oldest
_FRAME_BYTES = 1 << 20  # aimed-at most per frame: a quarter of the host's default limit
_MAX_FRAME_BATCHES = 8  # a frame takes at most this many batch_size of records

LogItem = LogEntry | ReadWriteLogRecord
"""A buffered log record: an entry from the logging handler, or an SDK record."""


class Frame(NamedTuple):
    """One frame to write, and what it carries."""

    data: bytes
    logs: int
    spans: int
    points: int
    drops: tuple[int, ...] = ()  # a drop report's counts (already counted as reported)


class Progress(NamedTuple):
    """How many records had been offered and metric batches queued, and the drops counted,
    at one moment (what a flush waits for)."""

    logs: int
    spans: int
    metric_batches: int
    drops: list[int]


class Outbox:
    """A child's buffered records, queued metric batches and counts (see the module)."""

    def __init__(
        self, *, max_buffer: int, batch_size: int, resource: Resource, child_name: str | None
    ) -> None:
        self.logs: SeverityBuffer[LogItem] = SeverityBuffer(max_buffer)
        self.spans: SeverityBuffer[ReadableSpan] = SeverityBuffer(max_buffer)
        self._batch_size = batch_size
        self._resource = resource
        self._child_name = child_name
        self._forked = False
        self.reset()

    def reset(self) -> None:
        """Empty and zeroed (also the fork hook's: the parent's records stay the parent's)."""
        self.logs.reset_after_fork()
        self.spans.reset_after_fork()
        self.lock = threading.Lock()
        """Guards the metric queue (and, for the pipeline, its shutdown flags)."""
        self._metric_batches: deque[tuple[bytes, int]] = deque()
        self._metric_batches_queued = 0
        self._metric_batches_done = 0  # sent, or counted as dropped
        self.sent = [0, 0, 0]  # records written to the socket (logs, spans, metric points)
        self.lost = [0, 0, 0]  # given up at exit, offered after it, pushed out of the queue
        self._unencodable = [0, 0]  # records whose values could not be encoded
        self._reported = [0, 0, 0]  # drops already reported to the host
        self._spans_first = False
        self._max_frame_records = self._batch_size * _MAX_FRAME_BATCHES
        self._frame_records = [self._batch_size, self._batch_size]  # most a frame takes
        self._identity: tuple[Resource, bytes] | None = None
        self._identity_lock = threading.Lock()

    def forget_identity(self) -> None:
        """After ``fork``: this process needs its own ``process.pid`` and instance id."""
        self._forked = True
        self._identity = None

    # ---- what comes in --------------------------------------------------------------
    def add_metrics(self, payload: bytes, points: int) -> None:
        """Queue an encoded metrics request (lock held by the caller). At most a few dozen
        wait; past that the oldest is given up and its points are counted as dropped."""
        self._metric_batches.append((encode_frame(FRAME_METRICS, payload), points))
        self._metric_batches_queued += 1
        if len(self._metric_batches) > _MAX_METRIC_BATCHES:
            _, lost = self._metric_batches.popleft()
            self.lost[2] += lost
            self._metric_batches_done += 1  # accounted for, as dropped

    # ---- counts -----------------------------------------------------------------------
    def drop_counts(self) -> list[int]:
        """``[log records, spans, metric data points]`` dropped so far."""
        return [
            self.logs.evicted + self._unencodable[0] + self.lost[0],
            self.spans.evicted + self._unencodable[1] + self.lost[1],
            self.lost[2],
        ]

    def progress(self) -> Progress:
        """What has been offered and dropped so far."""
        return Progress(
            self.logs.appended,
            self.spans.appended,
            self._metric_batches_queued,
            self.drop_counts(),
        )

    def reached(self, target: Progress) -> bool:
        """Whether everything offered at ``target`` has been sent or counted as dropped,
        every metric batch queued then is out and the drops are reported (a frame being
        written is the caller's to check)."""
        logs, spans, batches, drops = target
        drops_now = self.drop_counts()
        return (
            self.sent[0] + drops_now[0] >= logs
            and self.sent[1] + drops_now[1] >= spans
            and self._metric_batches_done >= batches
            and all(done >= want for done, want in zip(self._reported, drops, strict=True))
        )

    def written(self, frame: Frame) -> None:
        """``frame`` is out on the socket (sender thread)."""
        self.sent[0] += frame.logs
        self.sent[1] += frame.spans
        self.sent[2] += frame.points
        if frame.data[4] == FRAME_METRICS:
            self._metric_batches_done += 1

    def give_up(self, pending: Frame | None) -> None:
        """Exit ran out of time: count what is still buffered, queued or half sent
        (``pending``) as dropped (sender thread)."""
        self.lost[0] += len(self.logs.take(sys.maxsize))
        self.lost[1] += len(self.spans.take(sys.maxsize))
        if pending is not None:
            self._unreport(pending)
            self.lost[0] += pending.logs
            self.lost[1] += pending.spans
            self.lost[2] += pending.points
            if pending.data[4] == FRAME_METRICS:
                self._metric_batches_done += 1
        with self.lock:
            while self._metric_batches:
                self.lost[2] += self._metric_batches.popleft()[1]
                self._metric_batches_done += 1

    def _unreport(self, frame: Frame) -> None:
        """A drop report that never went out whole: its counts are owed again."""
        if frame.drops:
            self._reported = [r - d for r, d in zip(self._reported, frame.drops, strict=True)]

    def report_owed_drops(self, directory: str) -> None:
        """At exit, after :meth:`give_up`: what is still unreported goes into a file of the
        relay directory, which the host reads without the link. Not a frame: the host was
        not reading in time (back-pressure), and a file write does not wait for it."""
        counts = self.drop_counts()
        owed = [now - before for now, before in zip(counts, self._reported, strict=True)]
        if not any(owed):
            return
        if write_drop_file(directory, *owed):
            self._reported = counts
            return
        print(
            f"otelkit relay: {owed[0]} log records, {owed[1]} spans and {owed[2]} metric points "
            "were lost at exit and could not be reported to the relay host",
            file=sys.stderr,
        )

    # ---- what goes out ----------------------------------------------------------------
    def next_frame(self) -> Frame | None:
        """The next frame to send (sender thread): new drop counts first, then a metric
        batch, then log records and spans in turn; ``None`` when there is nothing."""
        counts = self.drop_counts()
        news = [now - before for now, before in zip(counts, self._reported, strict=True)]
        if any(news):
            self._reported = counts
            return Frame(encode_drops(*news), 0, 0, 0, tuple(news))
        with self.lock:
            batch = self._metric_batches.popleft() if self._metric_batches else None
        if batch is not None:
            return Frame(batch[0], 0, 0, batch[1])
        # Alternate between the signals so that a flood of one never starves the other.
        self._spans_first = not self._spans_first
        order = (self._span_frame, self._log_frame)
        for make in order if self._spans_first else reversed(order):
            frame = make()
            if frame is not None:
                return frame
        return None

    def _log_frame(self) -> Frame | None:
        items = self.logs.take(self._frame_records[0])
        if not items:
            return None
        entries = [i if type(i) is tuple else entry_from_sdk(i) for i in items]  # type: ignore[arg-type]
        payload, n = self._encode(encode_log_request, entries, 0)
        return Frame(encode_frame(FRAME_LOGS, payload), n, 0, 0)

    def _span_frame(self) -> Frame | None:
        spans = self.spans.take(self._frame_records[1])
        if not spans:
            return None
        payload, n = self._encode(encode_span_request, spans, 1)
        return Frame(encode_frame(FRAME_SPANS, payload), 0, n, 0)

    def _encode(self, encode: Any, items: list[Any], signal: int) -> tuple[bytes, int]:
        """Encode a batch; on failure, item by item, counting the unencodable as dropped."""
        resource = self.identity()[1]
        try:
            payload = encode(resource, items)
        except Exception as exc:  # noqa: BLE001 - one odd value must not cost the batch
            report_internal_error("relay.child", exc)
            good = []
            for item in items:
                try:
                    encode(resource, [item])
                    good.append(item)
                except Exception:  # noqa: BLE001 - counted below and reported to the host
                    self._unencodable[signal] += 1
            items, payload = good, encode(resource, good)
        self._size_frames(signal, len(payload), len(items))
        return payload, len(items)

    def _size_frames(self, signal: int, size: int, records: int) -> None:
        # The sender gets the GIL about once per switch interval (5 ms) while the
        # application thread logs flat out, and writes one frame a turn; with frames of
        # batch_size records that caps it near 100,000 records a second, and a backlog
        # only drains at exit. So a frame takes what is buffered, up to _MAX_FRAME_BATCHES
        # times batch_size records and about _FRAME_BYTES (by the size of the previous
        # frame's records: large records make smaller frames).
        if records:
            fitting = _FRAME_BYTES * records // max(size, 1)
            self._frame_records[signal] = max(1, min(fitting, self._max_frame_records))

    def identity(self) -> tuple[Resource, bytes]:
        """The child's resource (the given resource + pid, instance id, child name) and its
        protobuf encoding."""
        identity = self._identity
        if identity is not None:
            return identity
        # Made once: two threads asking at once (the sender encoding a frame, the metric
        # reader's export) must not each draw their own service.instance.id.
        with self._identity_lock:
            if self._identity is None:
                attributes = dict(self._resource.attributes)
                attributes["process.pid"] = os.getpid()
                if self._forked or "service.instance.id" not in attributes:
                    attributes["service.instance.id"] = str(uuid.uuid4())
                attributes[CHILD_NAME_ATTRIBUTE] = self._child_name or _default_child_name()
                resource = Resource(attributes, self._resource.schema_url)
                self._identity = (resource, encode_resource(resource))
            return self._identity


def _default_child_name() -> str:
    mp = sys.modules.get("multiprocessing")
    if mp is not None:
        name = mp.current_process().name
        if name != "MainProcess":
            return str(name)
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else "python"
    return os.path.basename(argv0) or "python"


def describe(item: object) -> str:
    """One line about a dropped record (for ``stderr_fallback``)."""
    if isinstance(item, ReadableSpan):
        return f"span {item.name!r}"
    if isinstance(item, ReadWriteLogRecord):
        lr = item.log_record
        return f"{lr.severity_text or ''} {lr.body!r}"
    if isinstance(item, tuple):
        return f"{item[3] or ''} {item[9]}: {item[4]!r}"
    return repr(item)
