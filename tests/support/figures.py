"""The figures the fault tests measure, printed so they can be quoted."""

from __future__ import annotations


def figure(test: str, text: str) -> None:
    """One line the lead can quote (run pytest with -s to see it)."""
    print(f"\nFIGURE [{test}] {text}", flush=True)
