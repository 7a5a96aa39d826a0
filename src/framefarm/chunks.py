"""Splitting a render into chunks: frame ranges rendered apart, then joined by stream copy.

The engine splits a local render into ``output.chunks`` ranges with :func:`split`; the
farm sizes its chunks to the nodes it has with :func:`plan`. Both give contiguous ranges
that cover the video exactly, with sizes that differ by at most one frame.
"""

from __future__ import annotations


def split(total: int, count: int) -> list[tuple[int, int]]:
    """Split [0, total) into ``count`` contiguous ranges whose sizes differ by at most one.

    ``count`` is clamped to 1..total, so no range is empty (unless ``total`` is 0)."""
    count = max(1, min(count, total))
    base, extra = divmod(total, count)
    ranges = []
    start = 0
    for i in range(count):
        end = start + base + (1 if i < extra else 0)
        ranges.append((start, end))
        start = end
    return ranges


def plan(total_frames: int, fps: int, *, nodes: int, min_chunk_seconds: float,
         max_chunks: int = 64, per_node: int | None = None,
         beside: int = 0) -> list[tuple[int, int]]:
    """The farm's render chunks: each at least ``min_chunk_seconds`` (to the nearest frame)
    unless the video is shorter, about one per node, and two per node when there are at
    most four, so one slow node does not hold the job up (``per_node`` says otherwise);
    never more than ``max_chunks``. ``beside`` tasks (the audio mix) are claimed before
    the chunks, each taking a node: at one chunk per node, that many fewer are planned,
    so every chunk starts at once."""
    min_frames = max(1, round(min_chunk_seconds * fps))
    longest = max(1, total_frames // min_frames)  # the most chunks that are long enough
    if per_node is None:
        per_node = 2 if nodes <= 4 else 1
    if per_node == 1:
        nodes -= beside
    return split(total_frames, max(1, min(longest, max_chunks, max(1, nodes) * per_node)))
