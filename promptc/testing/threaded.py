"""An aiohttp server running in a background thread (or the foreground), for test fakes."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from typing import Any

from aiohttp import web


class ThreadedServer:
    """Serve `self._handle` on host:port; `start()`/`stop()` or `with`. Subclasses add handlers."""

    thread_name = "fake-server"
    max_body = 64 * 1024 * 1024

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raise NotImplementedError

    def _address(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> Any:
        """Serve from a background thread; returns once the port is bound."""
        if self._thread is not None:
            raise RuntimeError("the server is already running")
        self._ready.clear()
        self._startup_error = None
        self._thread = threading.Thread(target=self._thread_main, name=self.thread_name, daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"{type(self).__name__} did not start in time")
        if self._startup_error is not None:
            self._thread.join()
            self._thread = None
            raise self._startup_error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and join the thread; pending hangs end at once."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None:
            return
        if loop is not None and stopping is not None:
            try:
                loop.call_soon_threadsafe(stopping.set)
            except RuntimeError:  # the loop already closed after a crash
                pass
        thread.join(timeout)
        self._thread = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self, on_ready: Callable[[str], None] | None = None) -> None:
        """Serve in this thread until SIGINT or SIGTERM."""
        asyncio.run(self._main(on_ready=on_ready, handle_signals=True))

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main(on_ready=None, handle_signals=False))
        except BaseException as exc:  # surfaced to start() instead of dying in the thread
            if not self._ready.is_set():
                self._startup_error = exc
                self._ready.set()
            else:
                raise

    async def _main(self, on_ready: Callable[[str], None] | None, handle_signals: bool) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        app = web.Application(client_max_size=self.max_body)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # Cancelling handlers when the client hangs up ends hangs whose client gave up,
        # and the short shutdown timeout keeps stop() fast with requests in flight.
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
            await site.start()
            self.port = runner.addresses[0][1]  # the real port when 0 asked for any
            if handle_signals:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    self._loop.add_signal_handler(sig, self._stopping.set)
            self._ready.set()
            if on_ready is not None:
                on_ready(self._address())
            await self._stopping.wait()
        finally:
            await runner.cleanup()
            self._loop = None
