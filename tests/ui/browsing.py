"""Page helpers for the browser tests: signing in, the accessibility check, the preview."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.ui.conftest import AXE, REPO, Server

XSS = "<img src=x onerror=alert(1)>"
# The README's screenshots are rewritten only when asked, so a test run leaves the tree clean.
IMAGES = (
    REPO / "docs" / "images"
    if os.environ.get("FOLD_UI_SCREENSHOTS") == "1"
    else Path(tempfile.mkdtemp(prefix="fold-ui-shots-"))
)


def new_page(browser: Browser, server: Server, width: int = 1366, height: int = 768) -> Page:
    context = browser.new_context(viewport={"width": width, "height": height}, base_url=server.url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.on("dialog", lambda d: pytest.fail(f"a dialog opened: {d.message}"))
    return page


def sign_in(page: Page, username: str, password: str) -> None:
    page.goto("/ui/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.locator(".who")).to_contain_text(username)


def check_accessibility(page: Page) -> None:
    """axe-core from its npm package: no serious or critical violation on the page."""
    if not page.evaluate("typeof axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes'][:3]]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, f"{page.url}: " + "; ".join(bad)


def wait_preview(page: Page) -> int:
    expect(page.locator(".preview")).to_have_attribute("data-state", "ready")
    text = page.locator("#preview-count").inner_text().replace(",", "")
    return int(text) if text.isdigit() else -1


def set_rule(page: Page, n: int, field: str, operator: str, value: str) -> None:
    page.locator(f"#field-{n}").fill(field)
    page.locator(f"#field-{n}").press("Tab")
    page.locator(f"#op-{n}").select_option(operator)
    page.locator(f"#value-{n}").fill(value)


def uid_of(url: str) -> str:
    found = re.search(r"/segments/([0-9a-f]{24})", url)
    assert found, url
    return found.group(1)
