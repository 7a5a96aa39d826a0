"""The document's named choices that front ends offer before any document is loaded (the
command line's options, the API's render options): kept apart from the models so a front
end can name them without importing pydantic and the whole document."""

from __future__ import annotations

from typing import Literal

SizePreset = Literal["360p", "480p", "720p", "1080p", "1440p", "2160p"]
Aspect = Literal["16:9", "9:16", "1:1", "4:5"]
Fps = Literal[24, 25, 30, 50, 60]
Format = Literal["mp4", "webm", "gif", "png"]
Quality = Literal["draft", "low", "medium", "high", "max", "lossless"]
