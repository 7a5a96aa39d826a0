"""Which failures of a task are permanent: they would happen again on any node, because
the input itself is bad. A permanent failure fails the job at once; any other is retried,
preferably on another node.

The engine says so itself with :class:`~framefarm.errors.DocumentError` (an invalid
document, an asset that is missing or not media). Some inputs only show they are broken
when their pixels or glyphs are decoded, mid-render, and the engine lets the decoder's
own exception through: Pillow's ``OSError("image file is truncated")``,
``OSError("broken file")`` or ``OSError("unknown file format")`` for a font,
``UnidentifiedImageError``; PyAV's ``InvalidDataError`` for a clip that does not decode.
The node tells those apart from its own troubles (a full disk, a lost connection) by
where they were raised — inside a decoder — and by their carrying no ``errno``: an
operating system error always has one.
"""

from __future__ import annotations

from PIL import UnidentifiedImageError

from framefarm import errors

# Modules whose exceptions, raised from their own code and without an errno, mean that the
# bytes they were given do not decode.
DECODERS = ("PIL", "av")
_DECODING_ERRORS = (OSError, SyntaxError, ValueError, EOFError)


def is_permanent(exc: BaseException) -> bool:
    """True if ``exc`` says the task's input is bad (the same input fails everywhere)."""
    if isinstance(exc, errors.DocumentError):
        return True
    if isinstance(exc, errors.FramefarmError):
        return False  # a render error: the encoder, a timeout, a cancel on this node
    if isinstance(exc, UnidentifiedImageError):
        return True
    if _av_invalid_data(exc):
        return True
    return (isinstance(exc, _DECODING_ERRORS) and getattr(exc, "errno", None) is None
            and _raised_in(exc, DECODERS))


def _av_invalid_data(exc: BaseException) -> bool:
    try:
        from av.error import InvalidDataError
    except ImportError:  # pragma: no cover - av is a dependency
        return False
    return isinstance(exc, InvalidDataError)


def _raised_in(exc: BaseException, packages: tuple[str, ...]) -> bool:
    """Whether the innermost frame of ``exc``'s traceback is in one of ``packages``."""
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    module = str(tb.tb_frame.f_globals.get("__name__", ""))
    return any(module == p or module.startswith(p + ".") for p in packages)
