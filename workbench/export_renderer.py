"""The headless Chromium that kaleido drives, on its own event-loop thread.

Start-up costs a few seconds and a render about half a second, so :mod:`workbench.export`
keeps one :class:`Renderer` for all exports. :func:`find_browser` says which Chromium is used.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
import time

log = logging.getLogger("workbench.export")
NOT_LOADED = "kaleido_scopes is not defined"  # kaleido's page script not loaded yet


class ExportError(Exception):
    """A figure could not be exported; the message says what failed and what to do."""


def find_browser() -> str:
    """Path of the Chromium kaleido will drive: ``$BROWSER_PATH`` or the usual places.

    Raises
    ------
    ExportError
        When ``BROWSER_PATH`` does not name an executable or no browser is found.
    """
    env = os.environ.get("BROWSER_PATH")
    if env:
        if os.path.isfile(env) and os.access(env, os.X_OK):
            return env
        raise ExportError(f"BROWSER_PATH={env!r} is not an executable file; point it at "
                          "Chromium or Chrome, or unset it to use /usr/bin/chromium")
    try:
        from choreographer.browsers.chromium import Chromium

        found = Chromium.find_browser(skip_local=False)
    except Exception:  # noqa: BLE001 - a broken lookup is reported like a missing browser
        found = None
    if found and os.path.isfile(found):
        return found
    raise ExportError("Chromium not found: install it (apt-get install chromium) or set "
                      "BROWSER_PATH to a Chromium/Chrome executable")


class Renderer:
    """A kaleido browser living on its own event-loop thread, shared by all exports."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._kaleido = None

    @property
    def running(self) -> bool:
        return self._kaleido is not None

    def start(self, timeout: float = 60.0) -> bool:
        """Start Chromium unless running; True when this call started it."""
        with self._lock:
            if self._kaleido is not None:
                return False
            try:
                import kaleido
            except ImportError as exc:
                raise ExportError(f"kaleido is not installed ({exc}); pip install 'kaleido>=1'") \
                    from None
            path = find_browser()
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="workbench-kaleido",
                                      daemon=True)
            thread.start()

            async def open_browser():
                browser = kaleido.Kaleido(n=1, timeout=timeout, mathjax=False, path=path)
                await browser.open()
                return browser

            try:
                future = asyncio.run_coroutine_threadsafe(open_browser(), loop)
                self._kaleido = future.result(timeout)
            except Exception as exc:  # noqa: BLE001 - any start failure is reported the same way
                _shutdown_loop(loop, thread)
                raise ExportError(f"could not start Chromium at {path} for export: "
                                  f"{type(exc).__name__}: {exc}") from None
            self._loop, self._thread = loop, thread
            return True

    def render(self, fig_dict: dict, opts: dict, timeout: float) -> bytes:
        """Bytes of one figure in ``opts["format"]``."""
        loop, browser = self._loop, self._kaleido
        if browser is None or loop is None:
            raise ExportError("the export renderer is not running")
        for attempt in range(2):
            future = asyncio.run_coroutine_threadsafe(browser.calc_fig(fig_dict, opts=opts), loop)
            try:
                return future.result(timeout)
            except concurrent.futures.TimeoutError:  # not the builtin TimeoutError before 3.11
                future.cancel()
                raise ExportError(f"rendering {opts['format']} took longer than {timeout:g} s") \
                    from None
            except Exception as exc:  # noqa: BLE001 - see below
                # A tab whose page script has not finished loading answers "kaleido_scopes is
                # not defined" (seen on a busy machine right after start-up): try once more.
                if attempt or NOT_LOADED not in str(exc):
                    raise
                time.sleep(0.5)
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """Close Chromium and the loop thread (no-op when not running)."""
        with self._lock:
            loop, thread, browser = self._loop, self._thread, self._kaleido
            self._loop = self._thread = self._kaleido = None
            if loop is None:
                return
            try:
                asyncio.run_coroutine_threadsafe(browser.close(), loop).result(30)
            except Exception as exc:  # noqa: BLE001 - closing is best effort
                log.warning("closing the export browser failed: %s", exc)
            finally:
                _shutdown_loop(loop, thread)


def _shutdown_loop(loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    """Cancel what is still pending on ``loop`` (browser watchdogs), stop it, join its thread."""

    async def cancel_pending():
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    try:
        asyncio.run_coroutine_threadsafe(cancel_pending(), loop).result(10)
    except Exception as exc:  # noqa: BLE001 - best effort during shutdown
        log.debug("cancelling export tasks: %s", exc)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    if not loop.is_running():
        loop.close()
