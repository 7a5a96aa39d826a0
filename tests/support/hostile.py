"""Hostile input files, made in the test: a decompression bomb, a truncated JPEG and a
font that is not one."""

from __future__ import annotations

import io
import random
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def png_bomb(path: Path, side: int = 60000) -> Path:
    """A PNG whose header claims side x side pixels, with a few bytes of pixel data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 4096)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
                     + chunk(b"IEND", b""))
    return path


def truncated_jpeg_bytes(keep: float = 0.6, seed: int = 1) -> bytes:
    """A noisy JPEG cut short: its header reads, its pixels do not decode."""
    noise = np.random.default_rng(seed).integers(0, 255, (360, 640, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="JPEG", quality=90)
    data = buffer.getvalue()
    return data[: int(len(data) * keep)]


def truncated_jpeg(path: Path) -> Path:
    path.write_bytes(truncated_jpeg_bytes())
    return path


def garbage_font(path: Path) -> Path:
    path.write_bytes(random.Random(7).randbytes(20000))
    return path
