"""pytest settings for the whole repository: notebooks run in their small (smoke) setting.

``python -m pytest`` runs every notebook under nbval. A notebook reads
:func:`andersonn_lab.deq.recipe.smoke_mode`, which is true when the environment variable
``ANDERSONN_LAB_SMOKE`` (or ``CI``) is set. This file sets ``ANDERSONN_LAB_SMOKE=1`` just
before each notebook's cells run, so that nbval's kernel inherits it: the test command takes
the notebooks' small path wherever it runs, with nothing to set by hand. The previous value
is put back afterwards, so unit tests see the environment as the user left it. A notebook
opened and run by hand (JupyterLab, ``jupyter nbconvert --execute``) runs its full recipe.
"""

from __future__ import annotations

import os

import pytest

SMOKE_VARIABLE = "ANDERSONN_LAB_SMOKE"
"""Must equal :data:`andersonn_lab.deq.recipe.SMOKE_VARIABLE` (tests/test_deq_recipe.py)."""

_saved: dict[str, str | None] = {}


def _is_notebook(item: pytest.Item) -> bool:
    return item.path.suffix == ".ipynb"


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Set the smoke variable before nbval starts a notebook's kernel (its first cell)."""
    if _is_notebook(item):
        _saved.setdefault(SMOKE_VARIABLE, os.environ.get(SMOKE_VARIABLE))
        os.environ[SMOKE_VARIABLE] = "1"


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Put the variable back once the notebooks are done (the kernels keep their copy)."""
    if _is_notebook(item) and (nextitem is None or not _is_notebook(nextitem)):
        previous = _saved.pop(SMOKE_VARIABLE, None)
        if previous is None:
            os.environ.pop(SMOKE_VARIABLE, None)
        else:
            os.environ[SMOKE_VARIABLE] = previous
