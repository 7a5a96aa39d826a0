"""Batches: one template rendered for many rows of data.

- :mod:`~framefarm.batch.rows` — rows from CSV or JSON, each checked against the
  template's variables and reported by row number and field
- :mod:`~framefarm.batch.shared` — which frame ranges are the same for every row, so
  they are rendered once per batch
- :mod:`~framefarm.batch.local` — ``framefarm batch``: a batch on this machine
"""
