"""Helpers for the real-browser test: find Chromium and Playwright, run a JupyterLab server.

The browser test drives a real JupyterLab in Debian's Chromium through Playwright (from
PyPI, with its own driver; no browser download). When either is missing the test is skipped
locally, but fails in CI (the ``CI`` environment variable is set) so that it never silently
stops running there.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOT_ENV = "ANDERSONN_LAB_UPDATE_SCREENSHOT"
"""Set to 1 to copy the explorer screenshot to ``docs/explorer.png``."""

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--enable-unsafe-swiftshader",
]
"""Flags that work for headless Debian Chromium on these machines (as root, no GPU)."""

LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
        "doNotDisturbMode": True,
    },
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}
"""User settings for the test server: no news or update toasts over the page, and every
cell kept in the page (with windowing, cells scrolled out of view leave the DOM)."""


def missing(reason: str) -> None:
    """Skip the test with ``reason``; in CI (``CI`` is set) fail instead, never skip silently."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


def require_chromium() -> str:
    """Return the path of the system Chromium, or skip/fail via :func:`missing`."""
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    missing(
        "Chromium not found on PATH; install it with "
        "'apt-get install -y --no-install-recommends chromium'"
    )
    raise AssertionError("unreachable")  # pragma: no cover


def require_playwright() -> None:
    """Import Playwright's sync API, or skip/fail via :func:`missing`."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing("playwright is not installed; run 'pip install playwright'")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LabServer:
    """A running JupyterLab server (see :func:`jupyterlab_server`)."""

    url: str
    root_dir: Path
    log: Path
    process: subprocess.Popen

    def wait_for_kernel(self, timeout: float = 120) -> None:
        """Wait until a notebook session's kernel has started (asks the REST API)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/api/sessions", timeout=5) as response:
                    sessions = json.load(response)
            except (urllib.error.URLError, OSError, ValueError):
                sessions = []
            states = [s.get("kernel", {}).get("execution_state") for s in sessions]
            if any(state in ("idle", "busy") for state in states):
                return
            time.sleep(0.5)
        raise TimeoutError(f"no kernel started within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server's log, for failure messages."""
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return "<no server log>"


def _write_settings(settings_dir: Path) -> None:
    for relative, values in LAB_SETTINGS.items():
        path = settings_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def _wait_until_up(server: LabServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"JupyterLab exited with {server.process.returncode}:\n{server.log_tail()}"
            )
        try:
            with urllib.request.urlopen(f"{server.url}/api/status", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"JupyterLab did not answer within {timeout:.0f} s:\n{server.log_tail()}")


def _stop(process: subprocess.Popen, grace: float = 20.0) -> None:
    """Stop the server and everything it started (its kernels): SIGTERM, then SIGKILL."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    try:  # kernels may outlive a server that exited on SIGTERM
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover
        pass


@contextmanager
def jupyterlab_server(
    notebooks: Path, workdir: Path, *, env: dict[str, str] | None = None, timeout: float = 120
) -> Iterator[LabServer]:
    """Run JupyterLab on a copy of ``notebooks`` in ``workdir``; always stop it afterwards.

    The server listens on a free port of 127.0.0.1 without token or password, serves a
    copy of the notebooks (so nothing is written into the repository) and uses its own
    settings, workspaces and runtime folders under ``workdir``. It runs in its own
    process group, which is stopped on exit (kernels included).

    Parameters
    ----------
    notebooks:
        Folder whose ``*.ipynb`` files are copied.
    workdir:
        An empty scratch folder.
    env:
        Extra environment variables for the server and its kernels (``{"CI": "1"}``).
    timeout:
        Seconds to wait for the server to answer.
    """
    root = workdir / "notebooks"
    root.mkdir(parents=True)
    for notebook in sorted(notebooks.glob("*.ipynb")):
        shutil.copy2(notebook, root / notebook.name)
    settings_dir = workdir / "lab-settings"
    _write_settings(settings_dir)
    port = free_port()
    full_env = {
        **os.environ,
        "JUPYTERLAB_SETTINGS_DIR": str(settings_dir),
        "JUPYTERLAB_WORKSPACES_DIR": str(workdir / "lab-workspaces"),
        "JUPYTER_RUNTIME_DIR": str(workdir / "runtime"),
        **(env or {}),
    }
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--allow-root",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.token=",
        "--ServerApp.password=",
        "--ServerApp.disable_check_xsrf=True",
        f"--ServerApp.root_dir={root}",
    ]
    log = workdir / "jupyterlab.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            command,
            cwd=root,
            env=full_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    server = LabServer(f"http://127.0.0.1:{port}", root, log, process)
    try:
        _wait_until_up(server, timeout)
        yield server
    finally:
        _stop(process)
