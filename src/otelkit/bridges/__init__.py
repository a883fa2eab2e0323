"""structlog and loguru into the OpenTelemetry log pipeline that ``otelkit.configure()``
installs (coalescing, relay children and all).

``StructlogProcessor()`` goes into structlog's processor chain before the renderer;
``LoguruSink()`` into ``loguru.logger.add()``. Neither module imports structlog or loguru:
importing this package costs nothing for users of either, or of neither. Constructing
``StructlogProcessor`` or ``LoguruSink`` without its library installed raises
:class:`otelkit.errors.MissingDependencyError` naming the extra.
"""

from otelkit.bridges._loguru import LoguruSink
from otelkit.bridges._structlog import StructlogProcessor

__all__ = ["LoguruSink", "StructlogProcessor"]
