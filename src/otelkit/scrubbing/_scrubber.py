"""``Scrubber``: replaces sensitive values in attributes and text, and notes what it replaced.

The work per record is one dictionary lookup per attribute key (each key's verdict is
cached) and, per string value, a lookup among the short strings already found clean or a
search by the rules; a record with nothing to scrub is handed on untouched.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.metrics import Counter, MeterProvider, NoOpMeterProvider

from otelkit._errors import report_internal_error
from otelkit.scrubbing._options import ScrubbingOptions, ScrubMatch
from otelkit.scrubbing._rules import (
    DEFAULT_KEY_PATTERNS,
    DEFAULT_VALUE_RULES,
    SENSITIVE_KEY,
    ValueRule,
    compile_keys,
    compile_values,
)

__all__ = ["SCRUBBED_ATTRIBUTE", "Notes", "Scrubber", "listing", "marker"]

SCRUBBED_ATTRIBUTE = "otelkit.scrubbed"
"""The attribute listing what was scrubbed from a record: ``"<where>: <rule>"`` strings,
never the values."""

Notes = list[tuple[str, str]]
"""``(location, rule)`` of each replacement made in one record."""

_MAX_CACHED_KEYS = 4096
_MAX_CACHED_CLEAN = 4096
_SHORT = 128  # the longest string remembered as clean
# Names the program sets, not its data: never searched (the file path is long, and on
# nearly every log record).
_DEFAULT_SAFE_KEYS = frozenset(
    {
        SCRUBBED_ATTRIBUTE,
        "exception.type",
        "error.type",
        "code.file.path",
        "code.filepath",
        "code.function.name",
        "code.function",
        "code.namespace",
        "code.line.number",
        "code.lineno",
        "thread.name",
        "thread.id",
    }
)


_MARKER_START = "[scrubbed:"
_PLAIN, _SENSITIVE, _SAFE = 0, 1, 2


def marker(rule: str) -> str:
    """The text that replaces what ``rule`` found: says why, never what."""
    return f"[scrubbed: {rule}]"


class Scrubber:
    """Applies the default rules plus ``options`` to values; counts what it replaced on
    ``otelkit.scrub.redactions`` {signal, rule} once a meter provider is bound."""

    def __init__(self, options: ScrubbingOptions | None = None) -> None:
        options = options or ScrubbingOptions()
        self.options = options
        self._keys = compile_keys((*DEFAULT_KEY_PATTERNS, *options.extra_keys))
        rules = (
            *DEFAULT_VALUE_RULES,
            *(ValueRule(name, pattern) for name, pattern in options.named_patterns()),
        )
        self._rules = compile_values(rules)
        self._min_length = min(rule.min_length for rule in rules)
        self._safe = _DEFAULT_SAFE_KEYS | frozenset(options.safe_keys)
        self._callback = options.callback
        self._key_rules: dict[str, int] = {}  # key -> _PLAIN, _SENSITIVE or _SAFE
        # Short strings in which no rule found anything (values repeat: a route, a region,
        # a status text): bounded, cleared when full.
        self._clean: set[str] = set()
        self._bind_lock = threading.Lock()
        self._counter = _counter(NoOpMeterProvider())

    def bind_meter_provider(self, meter_provider: MeterProvider) -> None:
        """Count redactions on ``meter_provider`` from now on."""
        with self._bind_lock:
            self._counter = _counter(meter_provider)

    def count(self, signal: str, notes: Notes) -> None:
        """Count ``notes`` (one record's replacements) for ``signal``."""
        counter = self._counter
        for _, rule in notes:
            counter.add(1, {"signal": signal, "rule": rule})

    # -- keys ---------------------------------------------------------------------------

    def key_is_sensitive(self, key: str) -> bool:
        """Whether an attribute named ``key`` has its value replaced whatever it is."""
        return self._key_verdict(key) == _SENSITIVE

    def _key_verdict(self, key: str) -> int:
        # _PLAIN (search the value), _SENSITIVE (replace it) or _SAFE (leave it), cached.
        verdict = self._key_rules.get(key)
        if verdict is None:
            if key in self._safe:
                verdict = _SAFE
            elif self._keys is not None and self._keys.search(key):
                verdict = _SENSITIVE
            else:
                verdict = _PLAIN
            if len(self._key_rules) >= _MAX_CACHED_KEYS:
                self._key_rules.clear()  # unbounded key sets (ids in names) stay bounded
            self._key_rules[key] = verdict
        return verdict

    # -- values -------------------------------------------------------------------------

    def text(self, value: str, location: str, notes: Notes) -> str:
        """``value`` with every secret shape replaced (the same object when none is)."""
        size = len(value)
        if size < self._min_length or value in self._clean:
            return value
        found: list[tuple[int, int, str]] | None = None
        lowered: str | None = None
        asked = False  # the callback's answer may depend on the location: not cacheable
        for rule in self._rules:
            if size < rule.min_length:
                continue
            hints = rule.hints
            if hints:
                if rule.fold:
                    if lowered is None:
                        lowered = value.lower()
                    haystack = lowered
                else:
                    haystack = value
                for hint in hints:
                    if hint in haystack:
                        break
                else:
                    continue
            position = 0
            while (match := rule.search(value, position)) is not None:
                group = rule.secret_group
                start, end = match.span(group) if group else match.span()
                position = max(match.end(), match.start() + 1)
                secret = value[start:end]
                if secret.startswith(_MARKER_START):  # scrubbed before (a relayed record)
                    continue
                if rule.validator is not None and not rule.validator(secret):
                    continue
                asked = True
                if self._allowed(location, rule.name, secret):
                    continue
                if found is None:
                    found = []
                found.append((start, end, rule.name))
        if found is None:
            if size <= _SHORT and not asked:
                if len(self._clean) >= _MAX_CACHED_CLEAN:
                    self._clean.clear()
                self._clean.add(value)
            return value
        found.sort()
        parts: list[str] = []
        done = 0
        for start, end, name in found:
            if start < done:
                continue  # inside what an earlier match replaces
            parts.append(value[done:start])
            parts.append(marker(name))
            notes.append((location, name))
            done = end
        parts.append(value[done:])
        return "".join(parts)

    def value(self, value: Any, location: str, notes: Notes) -> Any:
        """``value`` (a string, or a sequence or mapping holding strings) scrubbed."""
        if type(value) is str:
            return self.text(value, location, notes)
        if isinstance(value, (str, bytes, int, float, bool)) or value is None:
            return value
        if isinstance(value, Mapping):
            scrubbed = self.attributes(value, notes, prefix=f"{location}.")
            return value if scrubbed is None else scrubbed
        if isinstance(value, Sequence):
            items = [self.value(item, location, notes) for item in value]
            if any(a is not b for a, b in zip(items, value, strict=True)):
                return tuple(items) if isinstance(value, tuple) else items
        return value

    def attributes(
        self, attributes: Mapping[str, Any], notes: Notes, prefix: str = ""
    ) -> dict[str, Any] | None:
        """A scrubbed copy of ``attributes``, or ``None`` when nothing in them matched."""
        out: dict[str, Any] | None = None
        verdicts = self._key_rules
        shortest = self._min_length
        new: Any
        for key in attributes:  # by key: cheaper than items() on the SDK's mappings
            value = attributes[key]
            verdict = verdicts.get(key)
            if verdict is None:
                verdict = self._key_verdict(key)
            if verdict == _PLAIN:
                kind = type(value)
                if kind is str:
                    if len(value) < shortest:
                        continue
                    new = self.text(value, prefix + key, notes)
                elif kind is int or kind is float or kind is bool or value is None:
                    continue
                else:
                    new = self.value(value, prefix + key, notes)
                if new is value:
                    continue
            elif verdict == _SAFE:
                continue
            else:
                location = prefix + key
                if value is None or value == "" or self._allowed_key(location, value):
                    continue
                new = marker(SENSITIVE_KEY)
                if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
                    new = [new]
                notes.append((location, SENSITIVE_KEY))
            if out is None:
                out = dict(attributes)
            out[key] = new
        return out

    # -- the callback -------------------------------------------------------------------

    def _allowed(self, location: str, rule: str, text: str) -> bool:
        callback = self._callback
        if callback is None:
            return False
        try:
            return callback(ScrubMatch(location, rule, text)) is True
        except Exception as exc:  # noqa: BLE001 - fail closed: the value stays scrubbed
            report_internal_error("scrub.callback", exc)
            return False

    def _allowed_key(self, location: str, value: Any) -> bool:
        if self._callback is None:
            return False
        return self._allowed(location, SENSITIVE_KEY, str(value))


def _counter(meter_provider: MeterProvider) -> Counter:
    return meter_provider.get_meter("otelkit.scrub").create_counter(
        "otelkit.scrub.redactions",
        unit="{redaction}",
        description="Values otelkit scrubbed from telemetry, by signal and rule",
    )


def listing(notes: Notes) -> tuple[str, ...]:
    """The :data:`SCRUBBED_ATTRIBUTE` value for ``notes``: each ``"<where>: <rule>"`` once."""
    return tuple(dict.fromkeys(f"{location}: {rule}" for location, rule in notes))
