"""``Scrubber``: replaces sensitive values in attributes and text, and notes what it replaced.

The work per record is one dictionary lookup per attribute key (each key's verdict is
cached) and one regular-expression search per string value; a record with nothing to scrub
is handed on untouched.
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
_DEFAULT_SAFE_KEYS = frozenset({SCRUBBED_ATTRIBUTE, "exception.type", "error.type"})


_MARKER_START = "[scrubbed:"


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
        self._values, self._rules = compile_values(rules)
        self._search = self._values.search
        self._safe = _DEFAULT_SAFE_KEYS | frozenset(options.safe_keys)
        self._callback = options.callback
        self._key_rules: dict[str, bool] = {}  # key -> sensitive (cached verdicts)
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
        verdict = self._key_rules.get(key)
        if verdict is None:
            verdict = (
                key not in self._safe and self._keys is not None and bool(self._keys.search(key))
            )
            if len(self._key_rules) >= _MAX_CACHED_KEYS:
                self._key_rules.clear()  # unbounded key sets (ids in names) stay bounded
            self._key_rules[key] = verdict
        return verdict

    # -- values -------------------------------------------------------------------------

    def text(self, value: str, location: str, notes: Notes) -> str:
        """``value`` with every secret shape replaced (the same object when none is)."""
        match = self._search(value)
        if match is None:
            return value
        parts: list[str] = []
        done = 0
        changed = False
        while match is not None:
            name = match.lastgroup
            index = int(name[1:]) if name is not None else -1
            rule, secret_group, validator = self._rules[index]
            start, end = match.span(secret_group) if secret_group else match.span()
            secret = value[start:end]
            if (
                not secret.startswith(_MARKER_START)  # scrubbed before (a relayed record)
                and (validator is None or validator(secret))
                and not self._allowed(location, rule, secret)
            ):
                parts.append(value[done:start])
                parts.append(marker(rule))
                notes.append((location, rule))
                done = end
                changed = True
            match = self._search(value, max(match.end(), match.start() + 1))
        if not changed:
            return value
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
        sensitive = self.key_is_sensitive
        for key, value in attributes.items():
            if key in self._safe:
                continue
            location = prefix + key if prefix else key
            if sensitive(key):
                if value is None or value == "" or self._allowed_key(location, value):
                    continue
                new: Any = marker(SENSITIVE_KEY)
                if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
                    new = [new]
                notes.append((location, SENSITIVE_KEY))
            else:
                new = self.value(value, location, notes)
                if new is value:
                    continue
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
