"""Skip locally, fail under CI: a capability a test needs (a PostgreSQL server, a font, a
tool) may be missing on a laptop, never on CI."""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def skip_or_fail(reason: str) -> None:
    """Skip locally; under CI=true a missing capability is a failure, not a skip."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: this must not be skipped)", pytrace=False)
    pytest.skip(reason)
