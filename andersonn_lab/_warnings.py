"""Warnings that point at the user's code, not at the line inside andersonn_lab that raised them.

A warning raised several calls deep (``recipe.load`` → ``load_task`` → ``node_neighbor_image``)
would otherwise name a file in site-packages. :func:`warn` walks up the stack past every frame
of andersonn_lab and of torch (``model(x)`` reaches a solver through ``nn.Module.__call__``) and
attributes the warning to the first frame outside them: the notebook cell, script or test that
made the call. Python 3.12's ``skip_file_prefixes`` does the same, but we support 3.10.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

_PACKAGE = str(Path(__file__).resolve().parent) + os.sep


def _internal_prefixes() -> tuple[str, ...]:
    prefixes = [_PACKAGE]
    torch = sys.modules.get("torch")
    if torch is not None and getattr(torch, "__file__", None):
        prefixes.append(str(Path(torch.__file__).resolve().parent) + os.sep)
    return tuple(prefixes)


def external_stacklevel(skip: int = 1) -> int:
    """The ``stacklevel`` of :func:`warnings.warn` that names the first frame outside us.

    Parameters
    ----------
    skip:
        Frames above this function's own that belong to the caller of ``warnings.warn``
        (1: the function that calls ``external_stacklevel`` and then ``warnings.warn``).

    Returns
    -------
    int
        The level of the first frame, counting from the function that calls
        ``warnings.warn`` as 1, whose file is neither in andersonn_lab nor in torch; the
        outermost frame if all are (a widget's worker thread).
    """
    prefixes = _internal_prefixes()
    frame = sys._getframe(skip)
    level = 1
    while frame.f_back is not None and os.path.realpath(frame.f_code.co_filename).startswith(
        prefixes
    ):
        frame = frame.f_back
        level += 1
    return level


def warn(message: str | Warning, category: type[Warning] = UserWarning) -> None:
    """Issue a warning attributed to the user's code (the first caller outside the package).

    Parameters
    ----------
    message:
        The warning's text, or a warning instance.
    category:
        The warning class (ignored when ``message`` is a warning instance).

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn("careful")
    >>> caught[0].filename.endswith("_warnings.py")
    False
    """
    warnings.warn(message, category, stacklevel=external_stacklevel(2) + 1)
