"""What the service's data layer refuses, each mapped to one HTTP status by the API::

    ServiceError
    ├── NotFound          404  no such row for this tenant
    ├── Conflict          409  the request conflicts with the row's state
    │   └── IllegalTransition  the state machine has no such (state, event)
    ├── StaleLease        409  the lease token is no longer the task's
    ├── TooManyJobs       429  the tenant's limit of unfinished jobs
    ├── InsufficientCredits  402  the balance does not cover the job's reservation
    ├── QuotaExceeded     403  a plan's monthly output minutes are used up
    ├── StorageFull       413  an upload would take the tenant over its plan's storage
    ├── OverPlanResolution  422  the output is larger than the plan allows
    └── FeatureOff        403  the plan does not include it (code templates)

Refusals that carry numbers (what is needed, what is left) keep them in ``details``.
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """A service operation was refused."""

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.details = details


class NotFound(ServiceError):
    """No such row for this tenant (HTTP 404): another tenant's rows are not found either."""


class Conflict(ServiceError):
    """The request conflicts with the row's state (HTTP 409)."""


class IllegalTransition(Conflict):
    """The state machine allows no such event in this state."""


class StaleLease(ServiceError):
    """The lease token is not the task's current one: the task was requeued, finished or
    cancelled since. The node must drop its work (HTTP 409)."""


class TooManyJobs(ServiceError):
    """The tenant already has as many unfinished jobs as it may (HTTP 429)."""


class InsufficientCredits(ServiceError):
    """The tenant's credit balance does not cover what the job reserves (HTTP 402)."""


class QuotaExceeded(ServiceError):
    """The plan's output minutes for this calendar month are used up (HTTP 403)."""


class StorageFull(ServiceError):
    """The upload would take the tenant over its plan's storage (HTTP 413)."""


class FeatureOff(ServiceError):
    """The tenant's plan does not include what the request needs (HTTP 403)."""


class OverPlanResolution(ServiceError):
    """The output is larger than the plan's maximum resolution (HTTP 422)."""
