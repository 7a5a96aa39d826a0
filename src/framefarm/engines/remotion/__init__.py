"""Remotion projects rendered by framefarm, frame-exact in chunks.

A Remotion project (package.json, its lockfile, ``src/`` with the root file) is prepared
once per content hash (``project.prepare``: ``npm ci`` into a cache, then one bundle), and
rendered through :class:`RemotionEngine`, which fills :class:`framefarm.engines.Engine`:
frames drawn by the project's own Remotion in the system's Chromium, encoded by framefarm
(``engine.py``). ``local.py`` renders on this machine as the farm will (parts, audio,
assemble); ``process.py`` is the only place a program is started (npm, Node.js); the
Node side is ``bridge.mjs`` and ``props-check.js``.

framefarm bundles no Remotion code: the project brings it, under Remotion's own licence.
"""

from __future__ import annotations

from framefarm.engines.remotion.engine import RemotionEngine
from framefarm.engines.remotion.project import Prepared, is_project, prepare

__all__ = ["Prepared", "RemotionEngine", "is_project", "prepare"]
