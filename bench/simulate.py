"""How a render's wall time falls with more nodes: a simulation from measured costs.

    python bench/simulate.py --fps-per-node 9.4    # the other costs default to those measured

The defaults were measured on one CPU with the 1080p benchmark slideshows (quality high):
a task's start-up 0.37 s and 9.4 frames a second (``bench/task_startup.py``), the audio
mix of 2 minutes 6.3 s and the assemble task 0.7 s a minute of video (claim to done, parts
fetched over loopback), both from ``bench/service.py --only scaling --pin --timeline``.

The farm splits a render into chunks with the same rule as the service
(``chunks.plan``: chunks of at least ``min_chunk_seconds``, about two per node for few
nodes, one node fewer beyond four for the audio mix), runs the audio mix as one more
task, claimed first, and the assemble task after all of them. Each node takes the next
task as soon as it is free (greedy list scheduling, as the queue's claim does). A task
costs a fixed start-up (claim, input download, compositor warm-up) plus its frames at the
node's measured speed, plus its upload; assembly is a stream copy whose cost grows with
the video's length, on one node.

What limits the speed-up, from the model: the number of chunks (never more than the
video's length / min_chunk_seconds), the serial assemble and audio tasks, and the per-task
start-up and upload, which grow with the number of chunks.

``--audio-last`` models the farm before the audio mix was claimed first: the mix after
the last chunk, a chunk for every node. Run with a smaller ``--startup`` and
``--assemble-per-minute`` to see what prefetched inputs and parts joined as they arrive
would buy.
"""

from __future__ import annotations

import argparse
import heapq

from framefarm import chunks


def simulate(*, frames: int, fps: int, nodes: int, fps_per_node: float, startup: float,
             upload_per_chunk: float, audio: float, assemble: float,
             min_chunk_seconds: float, audio_last: bool = False) -> float:
    plan = planned(frames, fps, nodes, min_chunk_seconds, audio_last)
    work = [startup + (end - start) / fps_per_node + upload_per_chunk for start, end in plan]
    work.insert(len(work) if audio_last else 0, startup + audio)
    free = [0.0] * nodes  # when each node is next free
    heapq.heapify(free)
    finished = 0.0
    for cost in work:  # in claim order: the audio first (or last), chunks by index
        start = heapq.heappop(free)
        heapq.heappush(free, start + cost)
        finished = max(finished, start + cost)
    return finished + startup + assemble


def planned(frames: int, fps: int, nodes: int, min_chunk_seconds: float,
            audio_last: bool) -> list[tuple[int, int]]:
    """The chunks the service plans (renders.py), or a chunk for every node with
    ``audio_last``."""
    return chunks.plan(frames, fps, nodes=nodes, min_chunk_seconds=min_chunk_seconds,
                       beside=0 if audio_last else 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=120.0, help="video length")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--fps-per-node", type=float, required=True,
                        help="frames a node renders per second (measured)")
    parser.add_argument("--startup", type=float, default=0.37,
                        help="seconds per task before its first frame (bench/task_startup.py)")
    parser.add_argument("--upload-per-chunk", type=float, default=0.2)
    parser.add_argument("--audio", type=float, default=6.3,
                        help="audio task seconds (2 minutes of the benchmark's mix)")
    parser.add_argument("--assemble-per-minute", type=float, default=0.7,
                        help="assemble task seconds per minute of video (stream copy)")
    parser.add_argument("--min-chunk-seconds", type=float, default=2.0)
    parser.add_argument("--nodes", default="1,2,4,16,64")
    parser.add_argument("--audio-last", action="store_true",
                        help="model the audio task claimed after the chunks (the old order)")
    args = parser.parse_args()
    frames = round(args.seconds * args.fps)
    assemble = args.assemble_per_minute * args.seconds / 60
    counts = [int(n) for n in args.nodes.split(",")]
    base = None
    print(f"{args.seconds:g} s at {args.fps} fps, {args.fps_per_node:g} frames/s per node, "
          f"start-up {args.startup:g} s a task, assemble {assemble:.1f} s")
    print(f"{'nodes':>6} {'chunks':>7} {'wall s':>8} {'speed-up':>9} {'efficiency':>11}")
    for n in counts:
        wall = simulate(frames=frames, fps=args.fps, nodes=n, fps_per_node=args.fps_per_node,
                        startup=args.startup, upload_per_chunk=args.upload_per_chunk,
                        audio=args.audio, assemble=assemble,
                        min_chunk_seconds=args.min_chunk_seconds,
                        audio_last=args.audio_last)
        base = base or wall * counts[0]  # the first count's wall, per node
        count = len(planned(frames, args.fps, n, args.min_chunk_seconds, args.audio_last))
        speedup = base / wall
        print(f"{n:>6} {count:>7} {wall:>8.1f} {speedup:>8.2f}x {speedup / n:>10.0%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
