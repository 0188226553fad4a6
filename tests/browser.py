"""Drive headless Debian Chromium from tests: rendered DOM, clicks, screenshots.

Two ways in, both bounded in time and both killing Chromium on exit:

- `dump_dom(url)`: one-shot `--dump-dom` after `--virtual-time-budget` ms of page time.
- `Browser()`: a context manager speaking the DevTools protocol over a websocket, for pages
  you must act on::

      with Browser() as page:
          page.open("http://127.0.0.1:8123/docs")   # page.requests: every URL it fetched
          page.wait_for("document.querySelectorAll('.opblock').length > 0")
          page.click("button.authorize")            # document.querySelector(sel).click()
          page.fill("#oauth_username", "a@b.co")    # sets .value and fires input/change
          html = page.dom()                          # document.documentElement.outerHTML
          page.frame_texts()                         # [(url, innerText)] of its iframes
          page.screenshot(Path("/tmp/docs.png"))

`page.console` gathers console messages, uncaught exceptions and the browser's own log
(`security.error: ...` when a Content-Security-Policy refuses something). `html_page(html)`
serves a page from another origin, e.g. one that tries to frame ours.

Every call waits at most `timeout` seconds (default 20) and raises `BrowserError` on
timeout, on a JavaScript exception or when Chromium dies. `chromium_path()` returns the
binary; if it is missing the test is skipped loudly, or fails when env CI=true.
No network is reached: Chromium runs with --disable-background-networking and friends.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
DEFAULT_TIMEOUT = 20.0
WINDOW = (1280, 900)
BASE_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
    "--mute-audio",
]


class BrowserError(RuntimeError):
    """Chromium timed out, died, or the page raised a JavaScript exception."""


def chromium_path() -> str:
    """Return the Chromium binary; skip the test loudly if absent (fail when CI=true)."""
    found = shutil.which(CHROMIUM)
    if found:
        return found
    message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
    if IN_CI:
        pytest.fail(f"{message}; CI requires it.")
    warnings.warn(f"SKIPPING browser test: {message}", stacklevel=2)
    pytest.skip(message)


def _flags(profile: str, window: tuple[int, int]) -> list[str]:
    return [
        chromium_path(),
        *BASE_FLAGS,
        f"--user-data-dir={profile}",
        f"--window-size={window[0]},{window[1]}",
    ]


def dump_dom(url: str, *, budget_ms: int = 5000, timeout: float = 60.0) -> str:
    """Return the DOM of `url` after its scripts ran for `budget_ms` of virtual time.

    Args:
        url: The page to load.
        budget_ms: Virtual time given to the page's scripts before the DOM is serialised.
        timeout: Wall-clock seconds before Chromium is killed and `BrowserError` raised.

    Returns:
        The serialised DOM (`document.documentElement.outerHTML`).
    """
    with tempfile.TemporaryDirectory(prefix="chromium-", ignore_cleanup_errors=True) as profile:
        command = [*_flags(profile, WINDOW), f"--virtual-time-budget={budget_ms}", "--dump-dom"]
        process = subprocess.Popen(
            [*command, url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise BrowserError(f"chromium --dump-dom {url} took over {timeout}s") from exc
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    if process.returncode != 0:
        raise BrowserError(f"chromium exited {process.returncode}: {stderr[-2000:]}")
    return stdout


class Browser:
    """One headless Chromium with one tab, driven over the DevTools protocol."""

    def __init__(
        self, *, timeout: float = DEFAULT_TIMEOUT, window: tuple[int, int] = WINDOW
    ) -> None:
        self.timeout = timeout
        self.window = window
        self.console: list[str] = []  # console messages, uncaught exceptions, browser log
        self.requests: list[str] = []  # URL of every request the page made, in order
        self.blocked: list[str] = []  # those the browser refused to send (e.g. by CSP)
        self._urls: dict[str, str] = {}
        self._profile = tempfile.TemporaryDirectory(prefix="chromium-", ignore_cleanup_errors=True)
        self._process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close(); a pipe could block
        self._ws: ClientConnection | None = None
        self._stack = contextlib.ExitStack()  # closes the websocket
        self._next_id = 0

    # --- lifecycle -----------------------------------------------------------------------
    def __enter__(self) -> Browser:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _start(self) -> None:
        command = [*_flags(self._profile.name, self.window), "--remote-debugging-port=0"]
        self._process = subprocess.Popen(
            [*command, "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            start_new_session=True,  # its own process group, so close() kills every helper
        )
        port = self._read_port()
        socket = connect(self._page_socket(port), max_size=None, open_timeout=self.timeout)
        self._ws = self._stack.enter_context(socket)
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.send(f"{domain}.enable")
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=self.window[0],
            height=self.window[1],
            deviceScaleFactor=1,
            mobile=False,
        )

    def _read_port(self) -> int:
        """Wait for the DevToolsActivePort file Chromium writes once it listens."""
        marker = Path(self._profile.name) / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise BrowserError(f"chromium exited {self._process.returncode}: {self.log()}")
            lines = marker.read_text().splitlines() if marker.exists() else []
            if lines and lines[0].isdigit():
                return int(lines[0])
            time.sleep(0.05)
        raise BrowserError(f"chromium did not open its DevTools port within {self.timeout}s")

    def _page_socket(self, port: int) -> str:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=5).json()
            pages = [t for t in targets if t.get("type") == "page"]
            if pages:
                return str(pages[0]["webSocketDebuggerUrl"])
            time.sleep(0.05)
        raise BrowserError("chromium has no page target")

    def close(self) -> None:
        """Close the socket, kill Chromium and delete its profile. Safe to call twice."""
        self._stack.close()
        self._ws = None
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(timeout=10)
            self._process = None
        self._log.close()
        self._profile.cleanup()

    def log(self) -> str:
        """Return the last 2000 characters Chromium wrote to stderr."""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-2000:]

    # --- protocol ------------------------------------------------------------------------
    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Call a DevTools method and return its `result`; events seen meanwhile are noted.

        Raises:
            BrowserError: On a protocol error, a closed socket or after `timeout` seconds.
        """
        if self._ws is None:
            raise BrowserError("the browser is not running")
        self._next_id += 1
        call_id = self._next_id
        self._ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrowserError(f"{method} got no answer within {self.timeout}s")
            try:
                message = json.loads(self._ws.recv(timeout=remaining))
            except TimeoutError as exc:
                raise BrowserError(f"{method} got no answer within {self.timeout}s") from exc
            except ConnectionClosed as exc:
                raise BrowserError(f"chromium closed the connection during {method}") from exc
            if message.get("id") == call_id:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            self._note_event(message)

    def _note_event(self, message: dict[str, Any]) -> None:
        method = message.get("method")
        params = message.get("params", {})
        if method == "Runtime.consoleAPICalled":
            texts = [str(arg.get("value", arg.get("description", ""))) for arg in params["args"]]
            self.console.append(f"console.{params['type']}: {' '.join(texts)}")
        elif method == "Network.requestWillBeSent":
            self._urls[params["requestId"]] = str(params["request"]["url"])
            self.requests.append(str(params["request"]["url"]))
        elif method == "Network.loadingFailed" and params.get("blockedReason"):
            self.blocked.append(self._urls.get(params["requestId"], "?"))
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            self.console.append(f"exception: {text}")
        elif method == "Log.entryAdded":
            entry = params["entry"]
            self.console.append(f"{entry['source']}.{entry['level']}: {entry['text']}")

    # --- page actions --------------------------------------------------------------------
    def open(self, url: str) -> None:
        """Navigate to `url` and wait until `document.readyState` is complete."""
        result = self.send("Page.navigate", url=url)
        if result.get("errorText"):
            raise BrowserError(f"cannot open {url}: {result['errorText']}")
        self.wait_for("document.readyState === 'complete'")

    def evaluate(self, expression: str) -> Any:
        """Evaluate JavaScript in the page (promises awaited) and return its JSON value.

        Raises:
            BrowserError: If the expression throws.
        """
        result = self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"JavaScript error in {expression!r}: {text}")
        return result["result"].get("value")

    def wait_for(self, expression: str, *, timeout: float | None = None) -> Any:
        """Poll `expression` until it is truthy and return its value (`True` for an element).

        Raises:
            BrowserError: If it is still falsy after `timeout` (default: the browser's).
        """
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        checked = f"(v => v instanceof Node ? true : v)({expression})"  # elements: truthy
        while True:
            value = self.evaluate(checked)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(
                    f"still false after {limit}s: {expression}\nconsole: {self.console[-10:]}"
                )
            time.sleep(0.1)

    def click(self, selector: str) -> None:
        """Click the first element matching the CSS `selector` (waits for it to exist)."""
        self.wait_for(f"document.querySelector({json.dumps(selector)}) !== null")
        self.evaluate(f"document.querySelector({json.dumps(selector)}).click()")

    def fill(self, selector: str, value: str) -> None:
        """Type `value` into an input, the way React-driven pages (Swagger UI) notice it."""
        self.wait_for(f"document.querySelector({json.dumps(selector)}) !== null")
        self.evaluate(
            f"""(() => {{
              const el = document.querySelector({json.dumps(selector)});
              const proto = Object.getPrototypeOf(el);
              Object.getOwnPropertyDescriptor(proto, 'value').set.call(el, {json.dumps(value)});
              el.dispatchEvent(new Event('input', {{bubbles: true}}));
              el.dispatchEvent(new Event('change', {{bubbles: true}}));
            }})()"""
        )

    def frame_texts(self) -> list[tuple[str, str]]:
        """Return the URL and rendered text of each iframe of the page, however cross-origin.

        A frame the browser refused to show (X-Frame-Options, CSP frame-ancestors) holds the
        browser's error page instead: its URL is `chrome-error://...`.
        """
        tree = self.send("Page.getFrameTree")["frameTree"]
        texts = []
        for child in tree.get("childFrames", []):
            frame = child["frame"]
            world = self.send("Page.createIsolatedWorld", frameId=frame["id"])
            result = self.send(
                "Runtime.evaluate",
                expression="document.body ? document.body.innerText : ''",
                contextId=world["executionContextId"],
                returnByValue=True,
            )
            texts.append((str(frame["url"]), str(result["result"].get("value", ""))))
        return texts

    def dom(self) -> str:
        """Return the current DOM serialised (`document.documentElement.outerHTML`)."""
        html: str = self.evaluate("document.documentElement.outerHTML")
        return html

    def screenshot(self, path: Path, *, full_page: bool = False) -> Path:
        """Save a PNG of the viewport (or the whole page) to `path` and return it."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
            width, height = self.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
            )
            params["clip"] = {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}
        data = self.send("Page.captureScreenshot", **params)["data"]
        path.write_bytes(base64.b64decode(data))
        return path


@contextlib.contextmanager
def html_page(html: str) -> Iterator[str]:
    """Serve `html` at `/` of a new local origin (its own port) and yield that page's URL."""
    body = html.encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
            """Keep the test output quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
