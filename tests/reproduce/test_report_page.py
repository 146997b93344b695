"""The reproduction's report page in a real browser (Debian's chromium through Playwright).

Checks what a reader sees first (the findings), that every figure is drawn small enough to fit
the 1100 px column without shrinking its 8 pt labels below 9 px, that a click enlarges a figure,
and that the import report is folded into the appendix. Screenshots go to
``test-artifacts/report/``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect
from tests.browser import chromium

from harmrank.gateway.reports.figures import DPI
from harmrank.metrics.report import ReportSettings
from harmrank.reproduce.pipeline import STUDY_CLUSTERS, Options, reproduce

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "report"
SMALLEST_LABEL_PT = 8  # figures.py: tick, legend and cell labels
MIN_PX = 9


@pytest.fixture
def backend() -> str:
    return "sqlite"  # the page is the same whichever database held the data


@pytest.fixture
async def report_html(
    paper_data: Path, tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> Path:
    monkeypatch.setenv("HARMRANK_DATABASE_URL", db_url)
    settings = ReportSettings(p=0.9, resamples=50, seed=1, cluster_key=STUDY_CLUSTERS)
    outcome = await reproduce(Options(str(paper_data), tmp_path / "out", settings), lambda _: None)
    return outcome.files["html"]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


async def test_the_report_opens_with_its_findings_and_legible_figures(
    browser: Browser, report_html: Path
) -> None:
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await page.goto(report_html.as_uri())
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "first-screen.png"))

    findings = page.locator("#findings")
    await expect(findings).to_be_visible()
    assert await findings.locator("li").count() >= 10
    # findings come before every table and before the conventions
    order = await page.evaluate(
        """() => [...document.querySelectorAll('h2')].map(h => h.textContent)"""
    )
    assert order[0] == "Findings"
    assert order.index("Conventions") > order.index("Headline figures")
    box = await findings.bounding_box()
    assert box is not None
    assert box["y"] < 900  # on the first screen

    sizes = await page.evaluate(
        """() => [...document.querySelectorAll('figure img')].map(i => ({
            alt: i.alt, natural: i.naturalWidth, shown: i.getBoundingClientRect().width}))"""
    )
    assert len(sizes) >= 7
    smallest_native_px = SMALLEST_LABEL_PT / 72 * DPI
    for s in sizes:
        assert s["shown"] <= 1100, s
        assert smallest_native_px * s["shown"] / s["natural"] >= MIN_PX, s

    appendix = page.locator("#import-report")
    assert await appendix.get_attribute("open") is None  # folded
    await expect(appendix.locator("table")).to_be_hidden()

    figure = page.locator("figure").first
    await figure.click()
    await expect(figure).to_have_class("zoomed")
    await page.screenshot(path=str(ARTIFACTS / "figure-enlarged.png"))
    await page.keyboard.press("Escape")
    await expect(figure).not_to_have_class("zoomed")
    await page.screenshot(path=str(ARTIFACTS / "full-page.png"), full_page=True)
