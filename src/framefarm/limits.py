"""The bounds every document is checked against, in one place.

Override any of them with an environment variable, for example
``FRAMEFARM_LIMIT_MAX_DURATION=7200``.
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class Limits(BaseSettings):
    """Bounds on documents and renders; a document outside them is refused before rendering."""

    model_config = SettingsConfigDict(env_prefix="FRAMEFARM_LIMIT_", frozen=True)

    max_width: int = 4096
    max_height: int = 4096
    max_pixels: int = 3840 * 2160
    max_fps: int = 60
    max_duration: float = 3600.0
    max_scenes: int = 500
    max_layers_per_scene: int = 64
    max_layers: int = 5000
    max_text_length: int = 5000
    max_asset_bytes: int = 2 * 1024**3
    max_image_pixels: int = 80_000_000
    max_chunks: int = 256
    render_timeout: float = 6 * 3600.0
