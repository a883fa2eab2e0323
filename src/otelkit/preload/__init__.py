"""Cache preloading: warm hot and related keys ahead of demand, visible as OTel metrics.

``Preloader`` reads through a :class:`Cache` (``MemoryCache`` built in), loads each miss
once however many readers wait, prefetches related keys and refreshes hot keys shortly
before they expire. See ``docs/preload.md``.
"""

from otelkit.preload.cache import Cache, MemoryCache
from otelkit.preload.preloader import Preloader

__all__ = ["Cache", "MemoryCache", "Preloader"]
