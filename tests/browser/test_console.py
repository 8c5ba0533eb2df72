"""The console in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

Screenshots of each page are kept in ``tests/artifacts/console/`` (ignored by git).
Without chromium the tests fail saying what to install: they never skip.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.support.console import OPERATE_TOKEN, Console, running_console

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "console"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.fail("the browser tests need Debian's chromium: apt-get install -y chromium")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def console() -> AsyncIterator[Console]:
    async for running in running_console():
        yield running


async def signed_in(browser: Browser, console: Console, **context: object) -> Page:
    page = await (await browser.new_context(**context)).new_page()
    await page.goto(f"{console.url}/console/queue")
    await expect(page.get_by_label("Operations token")).to_be_visible()
    await page.get_by_label("Operations token").fill(OPERATE_TOKEN)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("h1")).to_have_text("Now")
    return page


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def test_sign_in_and_read_the_now_panel(browser: Browser, console: Console) -> None:
    page = await (await browser.new_context()).new_page()
    await page.goto(f"{console.url}/console/")
    await expect(page).to_have_url(f"{console.url}/console/login")
    await shot(page, "login")
    page = await signed_in(browser, console)
    cookies = await page.context.cookies()
    session = next(c for c in cookies if c["name"] == "offhours_console")
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    italy = page.locator("section[data-team=care-it]")
    await expect(italy.locator(".mode .badge")).to_have_text("reduced")
    await expect(italy.locator(".oncall")).to_contain_text("Marta Rossi")
    await expect(italy.locator(".transition")).to_contain_text("closes Tue 00:00 Europe/Rome, in 4 h 0 min")
    await expect(italy.locator(".promise")).to_contain_text("configured")
    await shot(page, "now")


async def test_the_timeline_marks_dst_days_and_overnight_spans(browser: Browser, console: Console) -> None:
    page = await signed_in(browser, console)
    await page.goto(f"{console.url}/console/timeline?team=care-us&from=2027-03-08&days=14")
    dst = page.locator("g.day[data-dst]")
    await expect(dst).to_have_count(1)
    await expect(dst).to_have_attribute("data-day", "2027-03-14")
    await expect(dst.locator(".dst-label")).to_have_text("DST 23 h")
    overnight = page.locator("rect.lane-effective[data-overnight]")
    assert await overnight.count() >= 14
    await overnight.first.hover()
    await expect(page.locator("#tip")).to_contain_text("your time")
    await shot(page, "timeline-dst")
    await page.goto(f"{console.url}/console/timeline?team=care-it&from=2026-11-23&days=14")
    await shot(page, "timeline")


async def test_an_override_changes_the_timeline_and_the_next_decision(browser: Browser, console: Console) -> None:
    page = await signed_in(browser, console)
    preview = f"{console.url}/console/preview?team=care-it&account=acme.it.whatsapp&channel=whatsapp&kind=dm&at=2026-11-23T21:00&text=ciao"
    await page.goto(preview)
    await expect(page.locator("[data-action]")).to_have_text("route")
    await expect(page.locator("#ack-text")).to_contain_text("Marta")
    await page.goto(f"{console.url}/console/overrides?team=care-it")
    await page.locator("input[name=day]").fill("2026-11-23")
    await page.locator("input[name=start]").fill("20:30")
    await page.locator("input[name=end]").fill("22:00")
    await page.locator("select[name=mode]").select_option("closed")
    await page.locator("input[name=note]").fill("team meeting")
    await page.get_by_role("button", name="Add override").click()
    await expect(page.locator(".notice")).to_contain_text("added override")
    await expect(page.locator("#api-overrides tbody tr[data-override]")).to_have_count(1)
    await shot(page, "overrides")
    await page.goto(f"{console.url}/console/timeline?team=care-it&from=2026-11-23&days=14")
    closed = page.locator("rect.lane-effective[data-source=override][data-start='2026-11-23T20:30:00+01:00']")
    await expect(closed).to_have_attribute("data-mode", "closed")
    await page.goto(preview)
    await expect(page.locator("[data-action]")).to_have_text("queue")
    await shot(page, "preview")
    await page.goto(f"{console.url}/console/overrides?team=care-it")
    await page.get_by_role("button", name="Remove").click()
    await expect(page.locator(".notice")).to_contain_text("removed override")
    await page.goto(preview)
    await expect(page.locator("[data-action]")).to_have_text("route")


async def test_a_claim_from_the_queue_stops_the_escalation(browser: Browser, console: Console) -> None:
    page = await signed_in(browser, console)
    await page.goto(f"{console.url}/console/queue")
    routed = console.conversations["routed"]
    row = page.locator(f"#routed tr[data-conversation='{routed}']")
    await expect(row.locator(".next-step")).to_have_text("Mon 23 Nov 19:55")
    await expect(row).to_contain_text("<script>alert(1)</script>")  # escaped, shown as text
    backlog = page.locator("table.backlog[data-team=care-it] tbody tr")
    await expect(backlog.first).to_have_attribute("data-conversation", console.conversations["backlog_early"])
    await shot(page, "queue")
    await row.locator("select[name=member]").select_option("marta")
    await row.get_by_role("button", name="Claim").click()
    await expect(page.locator(".notice")).to_contain_text("claim recorded")
    await expect(page.locator(f"#routed tr[data-conversation='{routed}']")).to_have_count(0)
    claimed = page.locator(f"#claimed tr[data-conversation='{routed}']")
    await expect(claimed).to_contain_text("escalation stopped")
    assert routed not in console.projection.pending


async def test_a_phone_sized_viewport(browser: Browser, console: Console) -> None:
    page = await signed_in(browser, console, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    await expect(page.locator("section[data-team=care-it]")).to_be_visible()
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 400, width
    await shot(page, "phone-now")
    await page.goto(f"{console.url}/console/queue")
    await expect(page.locator("#routed tr[data-conversation]").first).to_be_visible()
    assert await page.evaluate("document.documentElement.scrollWidth") <= 400
    await shot(page, "phone-queue")
