"""What the service's data layer refuses, each mapped to one HTTP status by the API::

    ServiceError
    ├── NotFound          404  no such row for this tenant
    ├── Conflict          409  the request conflicts with the row's state
    │   └── IllegalTransition  the state machine has no such (state, event)
    ├── StaleLease        409  the lease token is no longer the task's
    └── TooManyJobs       429  the tenant's limit of unfinished jobs
"""

from __future__ import annotations


class ServiceError(Exception):
    """A service operation was refused."""


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
