"""Headless Chromium for tests of pages: find the browser, dump a page's DOM after its scripts ran, save a
screenshot.

`make test` installs Debian's `chromium` in the background while pytest runs (the Makefile's `chromium`
target) and writes its output to `.chromium-install.log`, which ends with "chromium-install exit N".
`chromium_binary()` waits for that line while the install runs, then returns the browser's path; a failed
install, or no browser at all, fails the test with the log (never a silent skip).

    browser = Chromium()                      # waits for the install if it is still running
    html = browser.dump_dom(url)              # the DOM after the page's scripts ran
    browser.screenshot(url, path)             # a PNG of the page
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
INSTALL_LOG = ROOT / ".chromium-install.log"
INSTALL_DONE = "chromium-install exit "
BROWSER_NAMES = ("chromium", "chromium-browser")
# Root cannot use Chromium's sandbox; a container's /dev/shm is often tiny.
HEADLESS_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                  "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--metrics-recording-only", "--mute-audio",
                  "--hide-scrollbars")


class ChromiumMissingError(RuntimeError):
    """No usable browser: the install failed, is still running after the wait, or never ran."""


def _install_log() -> str | None:
    """The install's log so far (empty while it has printed nothing), None when no install ran."""
    try:
        return INSTALL_LOG.read_text(errors="replace")
    except FileNotFoundError:
        return None


def wait_for_install(timeout: float = 300, poll: float = 1.0) -> str:
    """The install log once it is complete ("" at once when no install ran); ChromiumMissingError if
    the install failed or is still running after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        log = _install_log()
        if log is None:
            return ""
        if INSTALL_DONE in log:
            break
        if time.monotonic() >= deadline:
            raise ChromiumMissingError(
                f"the chromium install (make chromium) still runs after {timeout:.0f} s (if no `make test` "
                f"runs, {INSTALL_LOG.name} is left from an interrupted one: delete it); so far:\n{log[-4000:]}")
        time.sleep(poll)
    if f"{INSTALL_DONE}0" not in log:
        raise ChromiumMissingError(f"the chromium install (make chromium) failed; {INSTALL_LOG.name}:\n{log[-4000:]}")
    return log


def chromium_binary(timeout: float = 300) -> str:
    """The browser's path: $CHROMIUM if set, else `chromium` on PATH, once a running install is done."""
    log = wait_for_install(timeout)
    found = os.environ.get("CHROMIUM") or next(filter(None, map(shutil.which, BROWSER_NAMES)), None)
    if not found:
        hint = f"{INSTALL_LOG.name}:\n{log[-4000:]}" if log else "run `make chromium` (apt-get install chromium)"
        raise ChromiumMissingError(f"no chromium on PATH; {hint}")
    return found


class Chromium:
    """One headless browser binary; each call runs a fresh browser with its own throw-away profile."""

    def __init__(self, binary: str | None = None, *, install_timeout: float = 300):
        self.binary = binary or chromium_binary(install_timeout)

    def _run(self, arguments: list[str], url: str, timeout: float) -> subprocess.CompletedProcess:
        with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
            command = [self.binary, *HEADLESS_FLAGS, f"--user-data-dir={profile}", *arguments, url]
            try:
                result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
            except subprocess.TimeoutExpired as error:
                raise AssertionError(f"chromium did not finish in {timeout} s: {' '.join(command)}") from error
        if result.returncode != 0:
            raise AssertionError(f"chromium exited {result.returncode}: {' '.join(command)}\n{result.stderr[-4000:]}")
        return result

    def dump_dom(self, url: str, *, budget_ms: int = 5000, timeout: float = 90) -> str:
        """The page's DOM (outer HTML) after `budget_ms` of virtual time: its scripts ran, its fetches
        answered (virtual time waits for the network)."""
        return self._run([f"--virtual-time-budget={budget_ms}", "--dump-dom"], url, timeout).stdout

    def screenshot(self, url: str, path: str | Path, *, width: int = 1400, height: int = 1800,
                   budget_ms: int = 5000, timeout: float = 90) -> Path:
        """A PNG of the page (`width` x `height` window) after `budget_ms` of virtual time."""
        path = Path(path).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        self._run([f"--virtual-time-budget={budget_ms}", f"--screenshot={path}", f"--window-size={width},{height}"],
                  url, timeout)
        if not path.is_file() or path.stat().st_size == 0:
            raise AssertionError(f"chromium wrote no screenshot to {path}")
        return path


def chromium_or_fail(install_timeout: float = 300) -> Chromium:
    """For a fixture: the browser, or the test fails with the reason (and the install log)."""
    try:
        return Chromium(install_timeout=install_timeout)
    except ChromiumMissingError as error:
        reason = str(error)
    pytest.fail(reason, pytrace=False)
