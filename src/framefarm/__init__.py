"""framefarm."""
