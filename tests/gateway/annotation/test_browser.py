"""A real browser (Debian's chromium through Playwright) drives the annotation page.

An annotator signs in, accepts the warning, ranks items by keyboard, has a tie refused, reloads
and resumes; responses holding ``<script>`` and ``<img onerror>`` are shown as text and nothing
runs. Screenshots go to ``test-artifacts/annotation/``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy import select
from tests.browser import chromium
from tests.gateway.annotation.conftest import MODELS, Item, Sessions, invite, seed_dataset

from harmrank.cli.annotation import sign_in_link
from harmrank.gateway.db import Ranking

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "annotation"
SCRIPT = "<script>window.__pwned = 'script'</script>"
IMAGE = "<img src=x onerror=\"window.__pwned = 'img'\">"
TIMEOUT_MS = 10_000


def items() -> list[Item]:
    """Three items; one model's response carries markup that must stay text."""
    return [
        Item(
            f"p{i}",
            f"Calm question {i}",
            (
                f"{MODELS[0]} answers {i} calmly",
                f"{MODELS[1]} says {SCRIPT} and {IMAGE}",
                f"{MODELS[2]} answers {i} gently",
            ),
        )
        for i in (1, 2, 3)
    ]


@pytest.fixture
def backend() -> str:
    # One backend is enough for the browser: the API tests cover both databases.
    return "sqlite"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def rank_by_keys(page: Page, keys: list[str]) -> None:
    for key in keys:
        await page.keyboard.press(key)


async def test_an_annotator_ranks_by_keyboard_and_resumes_after_a_reload(
    browser: Browser, client: httpx.AsyncClient, session_maker: Sessions, base_url: str
) -> None:
    await seed_dataset(client, session_maker, items())
    [token] = await invite(client)
    page = await browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    await page.goto(f"{base_url}/annotate/")
    await page.fill("#name", "ann")
    await page.fill("#token", token)
    await page.press("#token", "Enter")
    await expect(page.locator("#warning")).to_be_visible()
    await expect(page.locator("#warning-text")).to_contain_text("Content warning")
    await shot(page, "1-warning")
    await page.keyboard.press("Enter")  # the accept button has the focus

    # The first item: markup in a response is shown as text, and nothing ran.
    await expect(page.locator("#item")).to_be_visible()
    await expect(page.locator("#progress-text")).to_have_text("0 of 3 done")
    responses = page.locator("#responses")
    await expect(responses.get_by_text(SCRIPT, exact=False)).to_be_visible()
    await expect(responses.get_by_text(IMAGE, exact=False)).to_be_visible()
    assert await responses.locator("img, script").count() == 0
    assert await page.evaluate("window.__pwned") is None
    await shot(page, "2-item-with-markup-as-text")

    # Rank by keyboard: A = 2, B = 1, C = N/A, then Enter.
    await rank_by_keys(page, ["2", "1", "n"])
    await expect(page.locator(".response").nth(0)).to_contain_text("rank 2")
    await page.keyboard.press("Enter")
    await expect(page.locator("#progress-text")).to_have_text("1 of 3 done")

    # A tie is refused on the page, with a message; fixing it submits.
    await rank_by_keys(page, ["1", "1", "n", "Enter"])
    await expect(page.locator("#message")).to_have_text(
        "Ties are not allowed: rank 1 is given more than once."
    )
    await shot(page, "3-tie-refused")
    await expect(page.locator("#progress-text")).to_have_text("1 of 3 done")
    await rank_by_keys(page, ["ArrowUp", "2", "Enter"])
    await expect(page.locator("#progress-text")).to_have_text("2 of 3 done")
    waiting = await page.locator("#prompt").text_content()

    # Reload: no warning again, the same item waits, and progress is kept.
    await page.reload()
    await expect(page.locator("#item")).to_be_visible()
    await expect(page.locator("#progress-text")).to_have_text("2 of 3 done")
    await expect(page.locator("#prompt")).to_have_text(waiting or "")
    await shot(page, "4-resumed")

    # Mouse works too: N/A for every response by clicking, then the submit button.
    for index in range(3):
        await page.locator(".response").nth(index).get_by_role("button", name="N/A").click()
    await page.get_by_role("button", name="Submit").click()
    await expect(page.locator("#finished")).to_be_visible()
    await shot(page, "5-finished")

    assert await page.evaluate("window.__pwned") is None
    assert errors == []
    async with session_maker() as session:
        stored = list(await session.scalars(select(Ranking).order_by(Ranking.id)))
    assert len(stored) == 3
    assert stored[-1].ranks == [0, 0, 0]
    assert all(r.presentation and r.presentation["seconds"] >= 0 for r in stored)
    await page.close()


async def test_a_sign_in_link_fills_the_token_in_and_takes_it_out_of_the_address_bar(
    browser: Browser, client: httpx.AsyncClient, session_maker: Sessions, base_url: str
) -> None:
    await seed_dataset(client, session_maker, items())
    [token] = await invite(client)
    page = await browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    # The link `harmrank annotation invite` prints (harmrank.cli.annotation.sign_in_link).
    await page.goto(sign_in_link(base_url, "/annotate/", token))
    await expect(page.locator("#token")).to_have_value(token)
    assert page.url == f"{base_url}/annotate/"
    await page.fill("#name", "ann")
    await page.press("#token", "Enter")
    await expect(page.locator("#warning")).to_be_visible()
