"""Open ``report.html`` in headless Chromium: console errors, broken images, external
requests, and a full-page PNG screenshot.

Driver: Playwright's Python package (``pip install playwright``) launching the *system*
Chromium (``executable_path``; ``playwright install`` is never needed). The browser is,
in order: the ``browser`` argument, ``$KGREC_CHROMIUM``, ``/usr/bin/chromium``,
``/usr/bin/chromium-browser``, then ``chromium``, ``chromium-browser``,
``google-chrome``, ``google-chrome-stable`` on ``$PATH``.

Counted as errors (``console_errors``): ``console.error``/``assert`` messages, uncaught
page exceptions, failed requests, any request that is not ``file:``/``data:`` (aborted and
reported: the report must be self-contained) and images that did not decode. The check
never raises: a missing browser or driver, a crash or a timeout gives ``ok=False`` with the
reason in ``detail``.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
ON_PATH = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
VIEWPORT = {"width": 1280, "height": 900}
_BROKEN_IMAGES_JS = "() => Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.alt)"


@dataclass
class BrowserCheck:
    """Result of :func:`check_html`. ``ok``: the page loaded, produced no errors and the
    screenshot was written. ``browser``: executable and version (or what was searched).
    ``elapsed_s``: wall time of the whole check (launch included)."""

    ok: bool
    console_errors: list[str]
    screenshot: Path | None
    browser: str
    detail: str
    console_warnings: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0


def find_chromium(browser: str | None = None) -> str | None:
    """The Chromium executable to use (see the module docstring), or None. An explicit
    ``browser`` (path or name on ``$PATH``), or else a set ``$KGREC_CHROMIUM``, is the only
    candidate (no silent fallback to another browser)."""
    def resolve(name: str) -> str | None:
        if os.sep in name or Path(name).is_absolute():
            return name if Path(name).is_file() and os.access(name, os.X_OK) else None
        return shutil.which(name)

    if browser:
        return resolve(browser)
    env = os.environ.get("KGREC_CHROMIUM")
    if env:
        return resolve(env)
    for name in (*CANDIDATES, *ON_PATH):
        found = resolve(name)
        if found:
            return found
    return None


def check_html(html_path: Path, screenshot_path: Path, *, browser: str | None = None,
               timeout: float = 60) -> BrowserCheck:
    """Load ``html_path`` (``file://``) in headless Chromium at a 1280×900 viewport, wait for
    ``load``, collect errors and save a full-page PNG to ``screenshot_path``. ``timeout`` (s)
    bounds each browser operation. Never raises (see the module docstring)."""
    start = time.monotonic()
    html_path, screenshot_path = Path(html_path), Path(screenshot_path)

    def result(ok: bool, detail: str, exe: str, errors: list[str] | None = None, warnings: list[str] | None = None,
               shot: Path | None = None) -> BrowserCheck:
        return BrowserCheck(ok=ok, console_errors=errors or [], screenshot=shot, browser=exe, detail=detail,
                            console_warnings=warnings or [], elapsed_s=round(time.monotonic() - start, 3))

    exe = find_chromium(browser)
    if exe is None:
        where = browser or os.environ.get("KGREC_CHROMIUM") or ", ".join((*CANDIDATES, *ON_PATH))
        return result(False, f"no Chromium browser found (looked for: {where}); install it "
                             "(Debian: apt-get install chromium) or set $KGREC_CHROMIUM", "")
    if not html_path.is_file():
        return result(False, f"HTML file not found: {html_path}", exe)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return result(False, "the Python package 'playwright' is not installed (pip install playwright; "
                             "no 'playwright install' is needed, the system Chromium is used)", exe)

    errors: list[str] = []
    warnings: list[str] = []
    ms = timeout * 1000
    try:
        screenshot_path.parent.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path=exe, headless=True, timeout=ms)
            exe_desc = f"{exe} (Chromium {b.version})"
            try:
                context = b.new_context(viewport=VIEWPORT, device_scale_factor=1)
                page = context.new_page()
                page.set_default_timeout(ms)

                def on_console(msg) -> None:
                    loc = msg.location or {}
                    where = f" ({loc.get('url', '')}:{loc.get('lineNumber', '')})" if loc.get("url") else ""
                    if msg.type in ("error", "assert"):
                        errors.append(f"console.{msg.type}: {msg.text}{where}")
                    elif msg.type == "warning":
                        warnings.append(f"console.warning: {msg.text}{where}")

                def on_route(route) -> None:
                    url = route.request.url
                    if url.startswith(("file:", "data:", "about:")):
                        route.continue_()
                    else:
                        errors.append(f"external request blocked: {url}")
                        route.abort()

                page.on("console", on_console)
                page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))

                def on_failed(req) -> None:
                    if not req.url.startswith(("http:", "https:")):  # those were blocked (and reported) above
                        errors.append(f"request failed: {req.url} ({req.failure})")

                page.on("requestfailed", on_failed)
                context.route("**/*", on_route)
                page.goto(html_path.resolve().as_uri(), wait_until="load")
                broken = page.evaluate(_BROKEN_IMAGES_JS)
                errors.extend(f"image did not load: {alt!r}" for alt in broken)
                page.screenshot(path=str(screenshot_path), full_page=True)
            finally:
                b.close()
    except Exception as exc:  # noqa: BLE001 - the check must never crash the audit
        return result(False, f"browser check failed: {type(exc).__name__}: {exc}".strip(), exe, errors, warnings)
    shot = screenshot_path if screenshot_path.is_file() and screenshot_path.stat().st_size > 0 else None
    ok = not errors and shot is not None
    detail = ("page loaded without console errors" if ok else
              f"{len(errors)} error(s)" if errors else "no screenshot was written")
    return result(ok, detail, exe_desc, errors, warnings, shot)
