"""The annotation admin page works on a gateway that requires tokens to read (real Chromium)."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect
from pydantic import SecretStr
from tests.gateway.annotation.test_browser import TIMEOUT_MS, browser
from tests.gateway.hardening.conftest import MakeGateway
from tests.gateway.runs.helpers import Sessions

__all__ = ["browser"]
READ_TOKEN = "read-token-admin-page"


@pytest.fixture
def backend() -> str:
    return "sqlite"  # the browser needs one; the API tests cover both databases


async def test_the_admin_page_sends_its_token_on_reads(
    browser: Browser, seeded: Sessions, make_gateway: MakeGateway
) -> None:
    url = make_gateway(
        api_tokens=[SecretStr("write-token-admin-page")],
        read_tokens=[SecretStr(READ_TOKEN)],
        require_token_for_reads=True,
    )
    page = await browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    await page.goto(f"{url}/annotate/admin")
    await page.fill("#dataset", "toy")
    await page.fill("#write-token", READ_TOKEN)
    await page.get_by_role("button", name="Load progress").click()
    await expect(page.locator("#summary")).to_contain_text("items complete")
    await expect(page.locator("#message")).to_be_hidden()
