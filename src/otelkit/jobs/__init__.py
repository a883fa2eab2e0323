"""Observable SQL jobs: ``@store.job`` functions, leases, retries and workers.

Every state change of a job is a span event and a metric point; see ``docs/jobs.md``.
"""

from otelkit.jobs._decorator import JobFunction
from otelkit.jobs._handle import EnqueuedJob
from otelkit.jobs._limits import Limits, QueueLimits, Rate, WaitReason
from otelkit.jobs._model import (
    Backoff,
    Job,
    JobError,
    JobNotFoundError,
    JobNotReadyError,
    JobState,
    LeaseLostError,
    SchemaMissingError,
)
from otelkit.jobs._scheduler import JobSchedule
from otelkit.jobs._store import JobStore, JobTransition
from otelkit.jobs._worker import Worker

__all__ = [
    "Backoff",
    "EnqueuedJob",
    "Job",
    "JobError",
    "JobFunction",
    "JobNotFoundError",
    "JobNotReadyError",
    "JobSchedule",
    "JobState",
    "JobStore",
    "JobTransition",
    "LeaseLostError",
    "Limits",
    "QueueLimits",
    "Rate",
    "SchemaMissingError",
    "WaitReason",
    "Worker",
]
