"""The default scrubbing rules: sensitive attribute names and the shapes of secrets in text.

Two kinds of rule. A *key rule* matches an attribute's name (``password``, ``api_key``,
``session``, ...): the whole value is replaced. A *value rule* matches a secret's shape inside
a string (a payment card number, a bearer token, a JWT, ``password=...``, a private key
block): only the secret is replaced, so the text around it stays readable (and the same error
with different card numbers reads, and coalesces, the same). A value rule may carry a
validator (the Luhn check for card numbers, "decodes to ``user:password``" for basic
credentials), so that ordinary numbers and words are left alone.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "DEFAULT_KEY_PATTERNS",
    "DEFAULT_VALUE_RULES",
    "SENSITIVE_KEY",
    "CompiledRule",
    "ValueRule",
    "basic_credentials",
    "luhn_valid",
]

SENSITIVE_KEY = "sensitive key"
"""The rule name of a value replaced because its attribute's name is sensitive."""

DEFAULT_KEY_PATTERNS: tuple[str, ...] = (
    "password",
    "passwd",
    "pwd",
    "secret",
    r"api[._ -]?key",
    r"auth(?!ors?\b)",
    "credential",
    r"private[._ -]?key",
    r"access[._ -]?token",
    r"refresh[._ -]?token",
    "session",
    "cookie",
    r"social[._ -]?security",
    r"credit[._ -]?card",
    r"card[._ -]?number",
    # Short names only as whole words (or between underscores), so that they do not match
    # inside longer names or random text.
    *(rf"(?:\b|_){word}(?:\b|_)" for word in ("csrf", "xsrf", "jwt", "ssn", "cvv", "token")),
)
"""Attribute names (searched case-insensitively) whose values are always scrubbed."""


def luhn_valid(digits: str) -> bool:
    """Whether ``digits`` (13 to 19 of them, separators allowed) pass the Luhn check."""
    numbers = [ord(c) - 48 for c in digits if "0" <= c <= "9"]
    if not 13 <= len(numbers) <= 19 or len(set(numbers)) == 1:
        return False  # too short or long for a card; one repeated digit is no card number
    total = 0
    for i, n in enumerate(reversed(numbers)):
        if i % 2:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0


def basic_credentials(token: str) -> bool:
    """Whether ``token`` is base64 of ``user:password`` (HTTP basic credentials)."""
    try:
        decoded = base64.b64decode(token + "=" * (-len(token) % 4), validate=True)
        text = decoded.decode("utf-8")
    except (binascii.Error, ValueError):
        return False
    return ":" in text and text.isprintable()


@dataclass(frozen=True)
class ValueRule:
    """A secret's shape: ``pattern`` (the secret is its ``secret`` group when it has one,
    else the whole match), an optional ``validator`` of the secret, and the rule's name.

    ``hints`` (case-folded first when ``fold``) are substrings of which a text must hold one
    for the pattern to be searched at all, and ``min_length`` the shortest text it can
    match: most strings are ruled out by a substring test, far cheaper than a search.
    """

    name: str
    pattern: str
    validator: Callable[[str], bool] | None = None
    hints: tuple[str, ...] = ()
    fold: bool = False
    min_length: int = 1


DEFAULT_VALUE_RULES: tuple[ValueRule, ...] = (
    ValueRule(
        "private key",
        r"-----BEGIN[A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END[A-Z ]*PRIVATE KEY-----|\Z)",
        hints=("PRIVATE KEY",),
        min_length=40,
    ),
    ValueRule("jwt", r"\beyJ[\w-]{4,}\.eyJ[\w-]{4,}\.[\w-]*", hints=("eyJ",), min_length=20),
    ValueRule(
        "bearer token",
        r"\b[Bb]earer\s+(?P<secret>[\w\-.~+/]{8,}=*)",
        hints=("earer",),
        min_length=15,
    ),
    ValueRule(
        "basic credentials",
        r"\bBasic\s+(?P<secret>[A-Za-z0-9+/]{6,}={0,2})",
        basic_credentials,
        hints=("Basic",),
        min_length=12,
    ),
    ValueRule("url password", r"://[^\s:/@]+:(?P<secret>[^\s@/]+)@", hints=("://",), min_length=8),
    ValueRule(
        "password",
        r"(?i:\b(?:password|passwd|pwd|secret|api[_-]?key|access[_-]?token|token)\b)"
        r"[\"']?\s*[=:]\s*(?P<secret>\"[^\"]*\"|'[^']*'|[^\s,;&\"']+)",
        hints=("pass", "pwd", "secret", "key", "token"),
        fold=True,
        min_length=5,
    ),
    ValueRule(
        "credit card",
        r"(?<![\w.])\d(?:[ -]?\d){12,18}(?![\w.])",
        luhn_valid,
        min_length=13,
    ),
)
"""The secret shapes searched for in every string value, log body and exception message."""


def compile_keys(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    """One case-insensitive pattern for ``patterns`` (``None`` when there are none)."""
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


@dataclass(frozen=True)
class CompiledRule:
    """A :class:`ValueRule` ready to search: its compiled pattern and its secret group."""

    name: str
    search: Callable[..., re.Match[str] | None]
    secret_group: str | None
    validator: Callable[[str], bool] | None
    hints: tuple[str, ...]
    fold: bool
    min_length: int


def compile_values(rules: tuple[ValueRule, ...]) -> tuple[CompiledRule, ...]:
    """Each of ``rules`` compiled."""
    return tuple(
        CompiledRule(
            rule.name,
            re.compile(rule.pattern).search,
            "secret" if "(?P<secret>" in rule.pattern else None,
            rule.validator,
            tuple(h.lower() for h in rule.hints) if rule.fold else rule.hints,
            rule.fold,
            rule.min_length,
        )
        for rule in rules
    )
