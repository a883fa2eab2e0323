"""Local span trees waiting for their root: held children, verdicts, bounds and expiry.

A *local tree* is a span that ended with no parent or a remote parent (its local root)
plus every span below it that ended in this process (or was relayed from a child
process). Children usually end before their root, so they are held here until the root's
verdict (export or drop) is known. Entries are kept per trace id, in creation order; with
a fixed ``max_hold`` they expire in that order, so one deque and one timer serve all.

Bounds: at most ``max_held`` spans are held and at most ``max_held`` trace entries exist.
A trace whose spans had to leave before their root (held longer than ``max_hold``, too many
held, or evicted to make room) is *forced*: everything of that trace passes, its root
included, so no exported span ever loses its parent to a suppression. A forced trace is
remembered by id until its local root ends. Dropped roots (and dropped late children) are
remembered by span id, so a span that ends after its dropped parent is dropped too. Both
memories are bounded (``max(1024, 4 * max_held)`` ids each, oldest forgotten first);
verdicts on the other members of a dropped tree last as long as its entry (``max_hold``).
Beyond those, a late span is exported (counted as overflow): nothing is lost, at worst a
late span lacks its parent.
"""

from __future__ import annotations

from collections import OrderedDict, deque

from opentelemetry.sdk.trace import ReadableSpan

__all__ = ["TraceEntry", "Trees"]

_EPSILON = 1e-9


class TraceEntry:
    """What is known of one trace id: held spans, verdicts per span id, forced or not."""

    __slots__ = ("deadline", "forced", "held", "trace_id", "verdicts")

    def __init__(self, trace_id: int, deadline: float) -> None:
        self.trace_id = trace_id
        self.deadline = deadline
        self.held: list[ReadableSpan] = []
        self.verdicts: dict[int, bool] = {}
        self.forced = False


def _span_id(span: ReadableSpan) -> int:
    context = span.context
    return context.span_id if context is not None else 0


def _parent_id(span: ReadableSpan) -> int:
    parent = span.parent
    return parent.span_id if parent is not None else 0


class Trees:
    """The bookkeeping; not thread-safe on its own (the span processor holds a lock)."""

    def __init__(self, *, max_held: int, max_hold: float) -> None:
        self.max_held = max_held
        self.max_hold = max_hold
        self.entries: dict[int, TraceEntry] = {}
        self.order: deque[TraceEntry] = deque()
        self.held_count = 0
        self._max_remembered = max(1024, 4 * max_held)
        # forced traces without an entry, oldest first (ordered sets)
        self.forced_ids: OrderedDict[int, None] = OrderedDict()
        # span ids of dropped spans decided without an entry (childless roots, late
        # children): a span ending after its dropped parent is dropped too
        self.dropped_ids: OrderedDict[int, None] = OrderedDict()

    def is_forced(self, trace_id: int, entry: TraceEntry | None) -> bool:
        """Whether everything of ``trace_id`` must pass."""
        if entry is not None and entry.forced:
            return True
        forced_ids = self.forced_ids
        return bool(forced_ids) and trace_id in forced_ids

    def remember_dropped(self, span_id: int) -> None:
        """Remember that ``span_id`` was dropped (bounded: the oldest is forgotten)."""
        dropped = self.dropped_ids
        if len(dropped) >= self._max_remembered:
            dropped.popitem(last=False)
        dropped[span_id] = None

    def root_ended(self, trace_id: int) -> None:
        """A forced trace's local root has passed: stop remembering the trace."""
        self.forced_ids.pop(trace_id, None)

    def get(self, trace_id: int) -> TraceEntry | None:
        """The entry of ``trace_id``, if any."""
        return self.entries.get(trace_id)

    def create(self, trace_id: int, now: float, released: list[ReadableSpan]) -> TraceEntry:
        """A new entry (evicting the oldest when full: its held spans go to ``released``)."""
        while len(self.entries) >= self.max_held and self.order:
            oldest = self.order.popleft()
            del self.entries[oldest.trace_id]
            self._retire(oldest, released)
        entry = TraceEntry(trace_id, now + self.max_hold)
        self.entries[trace_id] = entry
        self.order.append(entry)
        return entry

    def hold(self, entry: TraceEntry, span: ReadableSpan) -> bool:
        """Hold ``span`` in ``entry``; ``False`` (nothing held) when ``max_held`` is reached."""
        if self.held_count >= self.max_held:
            return False
        entry.held.append(span)
        self.held_count += 1
        return True

    def force(self, entry: TraceEntry, released: list[ReadableSpan]) -> None:
        """From now on everything of this trace passes; its held spans go to ``released``."""
        entry.forced = True
        self._release(entry, released)

    def decide(self, entry: TraceEntry, span_id: int, verdict: bool) -> list[ReadableSpan]:
        """Record ``verdict`` for ``span_id`` and every held span below it; return those."""
        entry.verdicts[span_id] = verdict
        if not entry.held:
            return []
        children: dict[int, list[ReadableSpan]] = {}
        for span in entry.held:
            children.setdefault(_parent_id(span), []).append(span)
        members: list[ReadableSpan] = []
        stack = [span_id]
        while stack:
            for child in children.pop(stack.pop(), ()):
                child_id = _span_id(child)
                entry.verdicts[child_id] = verdict
                members.append(child)
                stack.append(child_id)
        if members:
            entry.held = [span for group in children.values() for span in group]
            self.held_count -= len(members)
        return members

    def expire(self, now: float, released: list[ReadableSpan]) -> None:
        """Forget entries past their deadline; held spans go to ``released`` and their
        trace is forced."""
        order = self.order
        while order and order[0].deadline <= now + _EPSILON:
            entry = order.popleft()
            del self.entries[entry.trace_id]
            self._retire(entry, released)

    def release_all(self, released: list[ReadableSpan]) -> None:
        """Force every trace that holds spans (``force_flush``/``shutdown``)."""
        for entry in self.order:
            if entry.held:
                self.force(entry, released)

    def next_deadline(self) -> float | None:
        """When the oldest entry expires, if any."""
        return self.order[0].deadline if self.order else None

    def clear(self) -> None:
        """Forget everything (after fork)."""
        self.entries.clear()
        self.order.clear()
        self.forced_ids.clear()
        self.dropped_ids.clear()
        self.held_count = 0

    def _retire(self, entry: TraceEntry, released: list[ReadableSpan]) -> None:
        # The entry is gone: a trace with spans out before its root stays forced by id.
        if entry.held or entry.forced:
            self._release(entry, released)
            forced_ids = self.forced_ids
            if len(forced_ids) >= self._max_remembered:
                forced_ids.popitem(last=False)
            forced_ids[entry.trace_id] = None

    def _release(self, entry: TraceEntry, released: list[ReadableSpan]) -> None:
        released.extend(entry.held)
        self.held_count -= len(entry.held)
        entry.held = []
