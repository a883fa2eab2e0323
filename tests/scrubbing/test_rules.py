"""The default rules replace what they are for, say why, and leave ordinary text alone."""

from __future__ import annotations

import base64

import pytest

from otelkit._errors import internal_error_counts
from otelkit.scrubbing import ScrubbingOptions, ScrubMatch
from otelkit.scrubbing._rules import SENSITIVE_KEY, luhn_valid
from otelkit.scrubbing._scrubber import Notes, Scrubber

BASIC = base64.b64encode(b"ada:lovelace").decode()
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
KEY_BLOCK = (
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\nabcd\n-----END RSA PRIVATE KEY-----"
)

# (text, what must not survive, the rule, the scrubbed text)
RULE_CASES = [
    (
        "ValueError: card 4000-0000-0000-0002 declined",
        "4000-0000-0000-0002",
        "credit card",
        "ValueError: card [scrubbed: credit card] declined",
    ),
    ("paid with 4111111111111111", "4111111111111111", "credit card", None),
    ("amex 3782 822463 10005 ok", "3782 822463 10005", "credit card", None),
    (
        "Authorization: Bearer abcDEF123456789.xyz",
        "abcDEF123456789.xyz",
        "bearer token",
        "Authorization: Bearer [scrubbed: bearer token]",
    ),
    (f"Authorization: Basic {BASIC}", BASIC, "basic credentials", None),
    (f"session {JWT} expired", JWT, "jwt", "session [scrubbed: jwt] expired"),
    ("login password=hunter2 rejected", "hunter2", "password", None),
    ('config {"password": "hunter2"}', "hunter2", "password", None),
    ("api_key: sk-live-1234 in use", "sk-live-1234", "password", None),
    ("connect postgres://app:s3cr3t@db:5432/x", "s3cr3t", "url password", None),
    (f"loaded {KEY_BLOCK} from disk", "MIIEowIBAAKCAQEA7", "private key", None),
]


@pytest.mark.parametrize(("text", "secret", "rule", "expected"), RULE_CASES)
def test_each_default_value_rule_replaces_the_secret_and_names_itself(
    text: str, secret: str, rule: str, expected: str | None
) -> None:
    notes: Notes = []
    scrubbed = Scrubber().text(text, "body", notes)
    assert secret not in scrubbed
    assert f"[scrubbed: {rule}]" in scrubbed
    assert notes == [("body", rule)]
    if expected is not None:
        assert scrubbed == expected


ORDINARY = [
    "GET /api/v1/orders/12345 200 in 35ms",
    "order 1234567890123 shipped",  # 13 digits, fails the Luhn check
    "invoice 4000-0000-0000-0001 paid",  # card-shaped, fails the Luhn check
    "1111111111111111 is no card",  # one repeated digit
    "request id 550e8400-e29b-41d4-a716-446655440000",
    "connected to 10.0.0.12:5432 as app",
    "timestamp 2024-05-01T12:30:45.123456Z",
    "phone +1 415 555 0100",
    "basic configuration loaded",
    "Basic settings applied",
    "the bearer of bad news",
    "the author wrote 3 chapters",
    "password reset email sent to the user",
    "token bucket refilled",
    "https://example.com/path?q=1",
    "processed 1700000000123456789 ns",
    "version 3.12.1 on linux",
    "scrubbed: nothing",
]


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_lines_and_luhn_failing_numbers_are_left_alone(text: str) -> None:
    notes: Notes = []
    assert Scrubber().text(text, "body", notes) is text
    assert notes == []


def test_luhn() -> None:
    assert luhn_valid("4000 0000 0000 0002")
    assert luhn_valid("5555555555554444")
    assert not luhn_valid("4000000000000001")
    assert not luhn_valid("12345")


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "db.password",
        "PASSWD",
        "client_secret",
        "api_key",
        "X-Api-Key",
        "authorization",
        "http.request.header.cookie",
        "session_id",
        "aws_credentials",
        "private_key",
        "user.ssn",
        "credit_card",
        "access_token",
        "jwt",
    ],
)
def test_sensitive_keys_have_their_whole_value_replaced(key: str) -> None:
    notes: Notes = []
    scrubbed = Scrubber().attributes({key: "anything", "user": "ada"}, notes)
    assert scrubbed == {key: f"[scrubbed: {SENSITIVE_KEY}]", "user": "ada"}
    assert notes == [(key, SENSITIVE_KEY)]


@pytest.mark.parametrize(
    "key", ["user", "author", "http.method", "code.function.name", "tokens_used", "order.id"]
)
def test_ordinary_keys_are_left_alone(key: str) -> None:
    notes: Notes = []
    assert Scrubber().attributes({key: "plain"}, notes) is None
    assert notes == []


def test_sequences_and_nested_mappings_are_scrubbed_inside() -> None:
    notes: Notes = []
    scrubbed = Scrubber().attributes(
        {"cards": ("4000-0000-0000-0002", "none"), "req": {"password": "x", "n": 1}}, notes
    )
    assert scrubbed == {
        "cards": ("[scrubbed: credit card]", "none"),
        "req": {"password": "[scrubbed: sensitive key]", "n": 1},
    }
    assert sorted(notes) == [("cards", "credit card"), ("req.password", SENSITIVE_KEY)]


def test_extra_patterns_extra_keys_and_safe_keys() -> None:
    scrubber = Scrubber(
        ScrubbingOptions(
            extra_patterns={"employee id": r"\bEMP-\d{6}\b"},
            extra_keys=["tenant"],
            safe_keys=["session_id"],
        )
    )
    notes: Notes = []
    scrubbed = scrubber.attributes(
        {"who": "EMP-123456 logged in", "tenant": "acme", "session_id": "s-1"}, notes
    )
    assert scrubbed == {
        "who": "[scrubbed: employee id] logged in",
        "tenant": "[scrubbed: sensitive key]",
        "session_id": "s-1",
    }


def test_a_callback_may_allow_a_match() -> None:
    seen: list[ScrubMatch] = []

    def allow_test_cards(match: ScrubMatch) -> bool:
        seen.append(match)
        return match.text == "4111 1111 1111 1111"

    scrubber = Scrubber(ScrubbingOptions(callback=allow_test_cards))
    notes: Notes = []
    text = scrubber.text("test 4111 1111 1111 1111, real 4000-0000-0000-0002", "body", notes)
    assert text == "test 4111 1111 1111 1111, real [scrubbed: credit card]"
    assert [(m.location, m.rule) for m in seen] == [("body", "credit card")] * 2


def test_a_value_the_callback_allowed_in_one_place_is_asked_about_again_elsewhere() -> None:
    # Clean short strings are remembered; one the callback let through is not clean.
    def allow_in_body(match: ScrubMatch) -> bool:
        return match.location == "body"

    scrubber = Scrubber(ScrubbingOptions(callback=allow_in_body))
    card = "paid 4000-0000-0000-0002"
    assert scrubber.text(card, "body", []) is card
    notes: Notes = []
    assert scrubber.text(card, "payment", notes) == "paid [scrubbed: credit card]"
    assert notes == [("payment", "credit card")]


def test_a_clean_value_stays_clean_and_a_secret_is_still_found_after_it() -> None:
    scrubber = Scrubber()
    for _ in range(2):  # the second time from what the first one remembered
        notes: Notes = []
        assert scrubber.text("region eu-west-1", "a", notes) == "region eu-west-1"
        assert scrubber.text("token=abc123 x", "a", notes) == "token=[scrubbed: password] x"
        assert notes == [("a", "password")]
    assert "region eu-west-1" in scrubber._clean  # remembered: the cache was used


def test_a_failing_callback_is_contained_counted_and_the_value_stays_scrubbed() -> None:
    def broken(match: ScrubMatch) -> bool:
        raise RuntimeError("callback bug")

    before = internal_error_counts().get("scrub.callback", 0)
    scrubber = Scrubber(ScrubbingOptions(callback=broken))
    notes: Notes = []
    assert scrubber.text("card 4000-0000-0000-0002", "body", notes) == (
        "card [scrubbed: credit card]"
    )
    assert scrubber.attributes({"password": "x"}, notes) == {
        "password": "[scrubbed: sensitive key]"
    }
    assert internal_error_counts()["scrub.callback"] == before + 2


def test_scrubbing_twice_changes_nothing_more() -> None:
    scrubber = Scrubber()
    once = scrubber.text("card 4000-0000-0000-0002 password=x Bearer abcdefghij", "b", [])
    notes: Notes = []
    assert scrubber.text(once, "b", notes) is once
    assert notes == []
