"""Helpers shared by the tests, each in one place.

The package is imported as ``support`` (``from support.media import write_wav``): pytest
puts ``tests/`` on ``sys.path`` because ``tests/conftest.py`` is a rootdir conftest in a
folder without ``__init__.py``, and child processes started with ``spawn`` inherit that path
(see :mod:`support.claimer_processes`).

- :mod:`support.ci`: ``IN_CI`` and ``skip_or_fail`` (a missing capability skips locally,
  fails under ``CI=true``).
- :mod:`support.polling`: ``wait_for``, polling a condition against a deadline.
- :mod:`support.media`: generated media (stills, tones, counter clips, a stand-in FFmpeg)
  and decoding (frames, timestamps, samples).
- :mod:`support.pixels`: measurements on decoded pixels (ink, rings).
- :mod:`support.files`: what a folder holds.
- :mod:`support.documents`: document builders (output blocks, simple, slideshow and long
  renders) and writing a document to disk.
- :mod:`support.video_checks`: the checks made on a farm's final video.
- :mod:`support.api`: the HTTP API from a test: bearer headers, the error shape, waiting for
  a job.
- :mod:`support.farm`: the app in-process (service, TestClient) with render nodes in
  threads.
- :mod:`support.server`: ``framefarm serve`` / ``framefarm worker`` as real processes on a
  free loopback port, and their child processes.
- :mod:`support.database`: PostgreSQL test databases (admin connection, create, drop,
  empty).
- :mod:`support.queue_farm`: tenants, nodes and jobs made directly on a queue store.
- :mod:`support.claimer_processes`: entry points for claimer processes (multiprocessing).
- :mod:`support.figures`: the ``FIGURE`` lines the fault tests print.
"""
