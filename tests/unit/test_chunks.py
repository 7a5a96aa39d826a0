"""Splitting a render into chunks: the engine's ``split`` and the farm's ``plan``."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from framefarm import chunks, engine
from framefarm.application.plans import render_plan

# -- split -------------------------------------------------------------------------------------


def test_split_examples() -> None:
    assert chunks.split(10, 3) == [(0, 4), (4, 7), (7, 10)]
    assert chunks.split(9, 3) == [(0, 3), (3, 6), (6, 9)]
    assert chunks.split(2, 5) == [(0, 1), (1, 2)]
    assert chunks.split(7, 1) == [(0, 7)]
    assert chunks.split(5, 0) == [(0, 5)]


@pytest.mark.parametrize("total", [1, 2, 3, 7, 30, 31, 105, 1001])
@pytest.mark.parametrize("count", [1, 2, 3, 4, 8, 16, 256])
def test_split_covers_and_balances(total: int, count: int) -> None:
    ranges = chunks.split(total, count)
    assert len(ranges) == min(total, count)
    assert ranges[0][0] == 0
    assert ranges[-1][1] == total
    for (_, end), (start, _) in itertools.pairwise(ranges):
        assert end == start
    sizes = [b - a for a, b in ranges]
    assert min(sizes) >= 1
    assert max(sizes) - min(sizes) <= 1
    assert sum(sizes) == total


def assert_partition(ranges: list[tuple[int, int]], total: int) -> None:
    """Contiguous, non-empty ranges covering [0, total) exactly, sizes within one frame."""
    assert ranges[0][0] == 0
    assert ranges[-1][1] == total
    for (_, end), (start, _) in itertools.pairwise(ranges):
        assert end == start
    sizes = [b - a for a, b in ranges]
    assert min(sizes) >= 1
    assert max(sizes) - min(sizes) <= 1


@given(total=st.integers(1, 100_000), count=st.integers(-5, 1000))
def test_split_is_a_balanced_partition(total: int, count: int) -> None:
    ranges = chunks.split(total, count)
    assert_partition(ranges, total)
    assert len(ranges) == max(1, min(count, total))


@given(total=st.integers(1, 10_000), count=st.integers(1, 100))
def test_split_puts_the_longer_ranges_first(total: int, count: int) -> None:
    sizes = [b - a for a, b in chunks.split(total, count)]
    assert sizes == sorted(sizes, reverse=True)


# -- plan --------------------------------------------------------------------------------------
# The expected values are what the service's plan_render computed before it used chunks.plan.


@pytest.mark.parametrize(("frames", "fps", "nodes", "min_seconds", "expected"), [
    (480, 24, 8, 2.0, [(i * 60, i * 60 + 60) for i in range(8)]),  # one per node
    (480, 24, 4, 2.0, [(i * 60, i * 60 + 60) for i in range(8)]),  # two per node
    (480, 24, 2, 2.0, [(0, 120), (120, 240), (240, 360), (360, 480)]),
    (480, 24, 5, 2.0, [(0, 96), (96, 192), (192, 288), (288, 384), (384, 480)]),
    (100, 24, 8, 2.0, [(0, 50), (50, 100)]),  # 4.2 s: two chunks of at least 2 s
    (30, 30, 8, 2.0, [(0, 30)]),  # shorter than a chunk
    (1, 30, 3, 2.0, [(0, 1)]),
    (61, 30, 3, 1.0, [(0, 31), (31, 61)]),
    (240, 25, 0, 2.0, [(0, 120), (120, 240)]),  # no node yet: planned as for one
])
def test_plan_examples(frames: int, fps: int, nodes: int, min_seconds: float,
                       expected: list[tuple[int, int]]) -> None:
    assert chunks.plan(frames, fps, nodes=nodes, min_chunk_seconds=min_seconds) == expected


def test_plan_is_capped_by_max_chunks() -> None:
    assert len(chunks.plan(7200, 30, nodes=100, min_chunk_seconds=2.0)) == 64
    capped = chunks.plan(7200, 30, nodes=100, min_chunk_seconds=2.0, max_chunks=16)
    assert capped == chunks.split(7200, 16)
    assert capped[:2] == [(0, 450), (450, 900)]


plan_args = {
    "total": st.integers(1, 200_000),
    "fps": st.sampled_from([24, 25, 30, 50, 60]),
    "nodes": st.integers(0, 300),
    "min_seconds": st.floats(0.01, 60.0),
    "max_chunks": st.integers(1, 256),
}


@given(**plan_args)
def test_plan_is_a_balanced_partition(total: int, fps: int, nodes: int, min_seconds: float,
                                      max_chunks: int) -> None:
    ranges = chunks.plan(total, fps, nodes=nodes, min_chunk_seconds=min_seconds,
                         max_chunks=max_chunks)
    assert_partition(ranges, total)
    assert len(ranges) <= max_chunks
    assert len(ranges) <= total
    assert len(ranges) <= max(1, nodes) * (2 if nodes <= 4 else 1)
    assert ranges == chunks.split(total, len(ranges))


@given(**plan_args)
def test_plan_chunks_are_long_enough(total: int, fps: int, nodes: int, min_seconds: float,
                                     max_chunks: int) -> None:
    ranges = chunks.plan(total, fps, nodes=nodes, min_chunk_seconds=min_seconds,
                         max_chunks=max_chunks)
    if len(ranges) > 1:
        # The minimum is min_chunk_seconds snapped to the nearest frame (at least one).
        shortest = max(1, round(min_seconds * fps))
        assert min(b - a for a, b in ranges) >= shortest
        assert min(b - a for a, b in ranges) / fps >= min_seconds - 0.5 / fps


@given(**plan_args)
def test_plan_uses_every_node_it_can(total: int, fps: int, nodes: int, min_seconds: float,
                                     max_chunks: int) -> None:
    # Fewer chunks than the nodes could take only when more would be too short or too many.
    ranges = chunks.plan(total, fps, nodes=nodes, min_chunk_seconds=min_seconds,
                         max_chunks=max_chunks)
    wanted = max(1, nodes) * (2 if nodes <= 4 else 1)
    if len(ranges) < wanted:
        one_more = chunks.split(total, len(ranges) + 1)
        too_short = min(b - a for a, b in one_more) < max(1, round(min_seconds * fps))
        assert len(ranges) == max_chunks or too_short or len(ranges) == total


def test_plan_per_node_overrides_the_two_per_node_of_small_farms() -> None:
    # A code template's chunk starts a browser of its own: one per node.
    assert chunks.plan(900, 30, nodes=2, min_chunk_seconds=2.0) == chunks.split(900, 4)
    assert chunks.plan(900, 30, nodes=2, min_chunk_seconds=2.0,
                       per_node=1) == [(0, 450), (450, 900)]
    # Still never shorter than the shortest worthwhile chunk.
    assert chunks.plan(150, 30, nodes=8, min_chunk_seconds=2.0,
                       per_node=1) == [(0, 75), (75, 150)]


def test_plan_leaves_a_node_to_the_audio_mix_beyond_four_nodes() -> None:
    # One chunk per node there: the node that mixes the audio (claimed first) gets none.
    assert chunks.plan(480, 24, nodes=8, min_chunk_seconds=2.0, beside=1) == chunks.split(480, 7)
    # Two per node up to four: the mix fits beside them without a chunk fewer.
    assert chunks.plan(480, 24, nodes=4, min_chunk_seconds=2.0, beside=1) == chunks.split(480, 8)
    assert chunks.plan(480, 24, nodes=1, min_chunk_seconds=2.0, beside=1) == chunks.split(480, 2)


def test_a_render_job_mixes_its_audio_first_and_assembles_last() -> None:
    plan = render_plan([(0, 10), (10, 20)], 20)
    assert [(p.kind, p.idx, p.frame_start, p.frame_end, p.waiting) for p in plan] == [
        ("audio", 0, 0, 20, False), ("render", 1, 0, 10, False), ("render", 2, 10, 20, False),
        ("assemble", 3, 0, 20, True)]
    # Chunks that bring their own sound (code templates): no audio task.
    assert [(p.kind, p.idx) for p in render_plan([(0, 20)], 20, audio_task=False)] == [
        ("render", 0), ("assemble", 1)]


def test_a_render_that_names_no_chunks_is_split_in_two_on_two_cores() -> None:
    two = 2 if engine.cores() >= 2 else 1
    assert engine.auto_chunks(240, 30) == two  # 8 s: two ranges of 4 s
    assert engine.auto_chunks(239, 30) == 1  # shorter: one range
    assert engine.auto_chunks(480, 60) == two
