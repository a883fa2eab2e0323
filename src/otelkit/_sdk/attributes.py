"""Attributes shortcut: the plain dictionary inside the SDK's ``BoundedAttributes``.

Reading a ``BoundedAttributes`` runs its mapping methods in Python (a lock and a copied key
list per iteration, a call per value); copying the dictionary that holds them is one C call.
otelkit's OTLP encoders read a record's attributes through :func:`attribute_dict` (what it
buys on the shipped path: ``docs/sdk-seam.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.attributes import BoundedAttributes

from otelkit._sdk._check import checked

__all__ = ["ATTRIBUTE_DICT_OK", "attribute_dict"]


def _check() -> bool:
    attrs = BoundedAttributes(attributes={"a": 1, "b": "x", "c": (1, 2)}, immutable=False)
    inner = attrs._dict
    return type(inner) is dict and list(inner.items()) == list(attrs.items())


ATTRIBUTE_DICT_OK = checked("attribute_dict", _check)
"""Whether :func:`attribute_dict` may read the dictionary inside ``BoundedAttributes``."""


def attribute_dict(attrs: Mapping[str, Any]) -> Mapping[str, Any]:
    """``attrs``, or for a ``BoundedAttributes`` a plain copy of its items, in order (the
    copy is one C call, safe against a thread that changes the attributes meanwhile)."""
    if type(attrs) is BoundedAttributes and ATTRIBUTE_DICT_OK:
        inner: dict[str, Any] = attrs._dict
        return inner.copy()
    return attrs
