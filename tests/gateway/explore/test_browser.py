"""A real browser (Debian's chromium through Playwright) drives the explorer.

The content warning comes once per browser session; the keyboard moves between prompts and
jumps to the next disagreement; "Load more" follows the next page's cursor; each filter, given
in the URL or through the form, lists the prompts worked out by hand in ``conftest.py``; markup
in every field the page shows stays text.
Screenshots go to ``test-artifacts/explore/``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

import pytest
from playwright.async_api import Browser, Page, expect
from starlette.types import ASGIApp
from tests.gateway.annotation.test_browser import TIMEOUT_MS
from tests.gateway.explore.conftest import (
    MODELS,
    Sample,
    Sessions,
    add_run,
    make_app,
    samples,
    seed,
)

from harmrank.gateway.reports.render import Page as ReportPage
from harmrank.gateway.reports.render import html_report
from harmrank.gateway.reports.summary import build_summary
from harmrank.metrics.rankings import AnnotatorRankings
from harmrank.metrics.report import ReportSettings, build_report

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "explore"


@pytest.fixture
def backend() -> str:
    # One backend is enough for the browser: the API tests cover both databases.
    return "sqlite"


async def new_page(browser: Browser) -> Page:
    page = await browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    return page


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def accept_warning(page: Page) -> None:
    await expect(page.locator("#warning")).to_be_visible()
    await page.keyboard.press("Enter")  # the accept button has the focus
    await expect(page.locator("#app")).to_be_visible()


async def listed(page: Page) -> list[str]:
    items = page.locator("#list li")
    return [
        await items.nth(i).get_attribute("data-prompt-id") or "" for i in range(await items.count())
    ]


async def test_the_warning_comes_once_per_session_and_keys_move_between_prompts(
    browser: Browser, session_maker: Sessions, base_url: str
) -> None:
    await seed(session_maker, samples())
    page = await new_page(browser)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(f"{base_url}/explore/?dataset=hand")
    await expect(page.locator("#app")).to_be_hidden()
    await shot(page, "1-warning")
    await accept_warning(page)
    await expect(page.locator("#counts")).to_have_text("4 of 4 prompts match")

    await page.keyboard.press("j")
    await expect(page.locator("#detail .prompt")).to_have_text("Alpha question")
    await page.keyboard.press("ArrowRight")
    await expect(page.locator("#detail .prompt")).to_have_text("Bravo question")
    await expect(page.locator("td.differs")).to_have_count(4)  # h2 and gpt4o #2 on m0 and m1
    await shot(page, "2-disagreement-marked")
    await page.keyboard.press("k")
    await expect(page.locator("#detail .prompt")).to_have_text("Alpha question")
    await page.keyboard.press("d")  # p1 has none: the next with a disagreement is p2
    await expect(page.locator("#detail .prompt")).to_have_text("Bravo question")
    await page.keyboard.press("d")
    await expect(page.locator("#detail .prompt")).to_have_text("Charlie question SEARCH-me")
    await page.keyboard.press("d")
    await page.keyboard.press("d")
    await expect(page.locator("#message")).to_have_text("No further prompt with a disagreement.")

    # The same session: no warning after a reload. A new session: the warning again.
    await page.reload()
    await expect(page.locator("#app")).to_be_visible()
    await expect(page.locator("#warning")).to_be_hidden()
    other = await browser.new_context()
    fresh = await other.new_page()
    await fresh.goto(f"{base_url}/explore/?dataset=hand")
    await expect(fresh.locator("#warning")).to_be_visible()
    await other.close()
    assert errors == []


URL_FILTERS = [
    ({"category": "hate"}, ["p1", "p3"]),
    ({"model": "m2", "a": "h1", "b": "gpt4o #1", "agreement": "differ"}, ["p3", "p4"]),
    ({"a": "h1", "b": "gpt4o #1", "agreement": "exact"}, ["p1", "p2"]),
    ({"a": "h1", "b": "gpt4o #1", "agreement": "harm_split"}, ["p3"]),
    ({"a": "h1", "b": "gpt4o #1", "agreement": "rbo_below", "lists": "harmful",
      "rbo_below": "0.85"}, ["p3"]),
    ({"split": "judges"}, ["p2", "p3", "p4"]),
    ({"split": "humans"}, ["p2"]),
    ({"position_effect": "true"}, ["p2"]),
    ({"q": "search-me"}, ["p3"]),
    ({"sort": "disagreement"}, ["p4", "p2", "p3", "p1"]),
]  # fmt: skip


async def test_each_filter_in_the_url_lists_the_expected_prompts_and_the_form_keeps_it(
    browser: Browser, session_maker: Sessions, base_url: str
) -> None:
    await seed(session_maker, samples())
    page = await new_page(browser)
    await page.goto(f"{base_url}/explore/?dataset=hand")
    await accept_warning(page)
    for params, expected in URL_FILTERS:
        await page.goto(f"{base_url}/explore/?{urlencode({'dataset': 'hand', **params})}")
        await expect(page.locator("#counts")).to_have_text(f"{len(expected)} of 4 prompts match")
        assert await listed(page) == expected, params
        for name, value in params.items():
            field = page.locator(f"#f-{name}")
            if name == "position_effect":
                await expect(field).to_be_checked()
            else:
                await expect(field).to_have_value(value)
    # Through the form: the filter goes into the address bar, to be shared.
    await page.goto(f"{base_url}/explore/?dataset=hand")
    await page.select_option("#f-a", "h1")
    await page.select_option("#f-b", "gpt4o #1")
    await page.select_option("#f-agreement", "harm_split")
    await page.get_by_role("button", name="Apply").click()
    await expect(page.locator("#counts")).to_have_text("1 of 4 prompts match")
    assert "agreement=harm_split" in page.url
    assert "rbo_below" not in page.url
    assert await listed(page) == ["p3"]
    export = await page.locator("#export-csv").get_attribute("href")
    assert export is not None
    assert "agreement=harm_split" in export
    assert "format=csv" in export


def many(count: int) -> list[Sample]:
    """``count`` prompts taking the hand-made four's texts and rankings in turn."""
    base = samples()
    return [
        Sample(f"n{i:03d}", f"{b.text} {i}", b.category, b.responses, b.ranks)
        for i, b in ((i, base[i % len(base)]) for i in range(count))
    ]


async def test_load_more_follows_the_cursor_past_the_first_page_in_the_filters_order(
    browser: Browser, session_maker: Sessions, base_url: str
) -> None:
    await seed(session_maker, many(130))
    page = await new_page(browser)
    await page.goto(f"{base_url}/explore/?dataset=hand&sort=disagreement")
    await accept_warning(page)
    await expect(page.locator("#counts")).to_have_text("130 of 130 prompts match")
    await expect(page.locator("#list li")).to_have_count(100)  # explore.js asks 100 a page
    await page.locator("#more").click()
    await expect(page.locator("#list li")).to_have_count(130)
    await expect(page.locator("#more")).to_be_hidden()
    # Most disagreement first (p4's rankings 0.8, p2's and p3's 0.6, p1's 0), then upload order.
    share = [0.0, 0.6, 0.6, 0.8]
    expected = sorted(range(130), key=lambda i: (-share[i % 4], i))
    assert await listed(page) == [f"n{i:03d}" for i in expected]


SCRIPT = "<script>window.__pwned = 'script'</script>"
IMAGE = '<img src=x onerror="window.__pwned = 1">'


def hostile() -> list[Sample]:
    """Markup in every text the page shows: ids, category, prompt, responses, answers."""

    def ranks(x: str) -> list[int]:
        return [int(v) for v in x.split(",")]

    return [
        Sample(f"x{IMAGE}", f"prompt {SCRIPT} {IMAGE}", f"cat {IMAGE}",
               (f"r0 {SCRIPT}", f"r1 {IMAGE}", "r2"),
               {f"h{IMAGE}": ranks("1,2,0"), f"j{IMAGE} #1": ranks("2,1,0"),
                f"j{IMAGE} #2": ranks("1,2,0")},
               raw={f"j{IMAGE} #1": f"answer {SCRIPT} {IMAGE}"}),
    ]  # fmt: skip


async def test_markup_in_every_shown_field_is_text_and_nothing_runs(
    browser: Browser, session_maker: Sessions, base_url: str
) -> None:
    models = (f"m{IMAGE}", "m1", "m2")
    kinds = {f"h{IMAGE}": "human", f"j{IMAGE}": "judge"}
    prompts = await seed(session_maker, hostile(), dataset=f"d{IMAGE}", models=models, kinds=kinds)
    judges = ((f"j{IMAGE}", 0), (f"j{IMAGE}", 1))
    run = await add_run(
        session_maker, f"d{IMAGE}", [prompts[f"x{IMAGE}"]], judges=judges, humans=[f"h{IMAGE}"],
        abstention=f"refused: {IMAGE}",
    )  # fmt: skip
    page = await new_page(browser)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    for scope in ({"dataset": f"d{IMAGE}"}, {"run": str(run)}):
        await page.goto(f"{base_url}/explore/?{urlencode(scope)}")
        if await page.locator("#warning").is_visible():
            await accept_warning(page)
        await expect(page.locator("#list li")).to_have_count(1)
        await page.keyboard.press("j")
        detail = page.locator("#detail")
        await expect(detail.get_by_text(f"prompt {SCRIPT} {IMAGE}")).to_be_visible()
        shown = (f"r0 {SCRIPT}", f"r1 {IMAGE}", f"cat {IMAGE}", f"m{IMAGE} display",
                 f"normalised: read answer {SCRIPT}")  # fmt: skip
        for text in shown:
            await expect(detail.get_by_text(text, exact=False).first).to_be_visible()
        await expect(page.locator("#f-a option", has_text=f"h{IMAGE}")).to_have_count(1)
        await expect(page.locator("#f-model option", has_text=f"m{IMAGE}")).to_have_count(1)
        assert await page.locator("#detail img, #detail script, #list img, form img").count() == 0
        assert await page.evaluate("window.__pwned") is None
    await expect(page.locator("#detail").get_by_text(f"refused: {IMAGE}")).to_be_visible()
    await shot(page, "3-markup-as-text")
    assert errors == []


def hand_report(explore: str) -> str:
    """The report of claude against h1 on the hand-made dataset, linking to ``explore``."""
    by_column = {s.id: s.ranks for s in samples()}
    annotators = [
        AnnotatorRankings.build(name, MODELS, {p: r[name] for p, r in by_column.items()})
        for name in ("h1", "claude")
    ]
    report = build_report(annotators, ReportSettings(p=0.9, resamples=20), pairs=[("claude", "h1")])
    summary = build_summary(report, n_prompts=4, data={"source": "hand-made"})
    page = ReportPage(title="hand", heading="hand", explore=explore)
    return html_report(report, summary, page)


async def test_a_report_cell_links_to_the_samples_behind_it(
    browser: Browser, session_maker: Sessions, base_url: str
) -> None:
    await seed(session_maker, samples())
    html = hand_report(f"{base_url}/explore/?dataset=hand")
    page = await new_page(browser)
    claude_wins = page.locator("h3:has-text('least harm (claude)') + table")
    histogram = page.get_by_role("row", name="h1: m0")
    # (the link, the prompts behind it worked out from the table in conftest.py)
    cases = [
        # claude vs h1 differ only on p4 (2,3,1 against 3,2,1).
        (page.locator("tr", has_text="claude vs h1").locator("td").nth(4).locator("a"), ["p4"]),
        # claude ranks m0 less harmful than m1 on p1, p2 and p4 (p3: both N/A, a tie).
        (claude_wins.get_by_role("row", name="m0 vs m1").locator("a").first, ["p1", "p2", "p4"]),
        # h1 gave m0 rank 1 on p1 and p2: a bar of its rank histogram.
        (histogram.get_by_role("link", name="1", exact=True), ["p1", "p2"]),
    ]  # fmt: skip
    for link, expected in cases:
        await page.set_content(html)
        await link.click()
        await page.wait_for_url(f"{base_url}/explore/**")
        if await page.locator("#warning").is_visible():
            await accept_warning(page)
        await expect(page.locator("#counts")).to_have_text(f"{len(expected)} of 4 prompts match")
        assert await listed(page) == expected, page.url
    await shot(page, "4-from-a-report-cell")


@pytest.mark.parametrize("token", [None, "read-me"])
async def test_the_export_links_download_the_filtered_prompts_with_or_without_a_read_token(
    browser: Browser,
    session_maker: Sessions,
    serve_app: Callable[[ASGIApp], str],
    db_url: str,
    token: str | None,
) -> None:
    """A link the browser opens carries no token: on a gateway that needs one for reads, the
    page fetches the file with the token it was given and hands it over as the same download."""
    await seed(session_maker, samples())
    url = serve_app(make_app(db_url, [token] if token else []))
    page = await new_page(browser)
    await page.goto(f"{url}/explore/?dataset=hand&category=hate")
    await expect(page.locator("#warning")).to_be_visible()
    await page.keyboard.press("Enter")
    if token:
        await expect(page.locator("#token-form")).to_be_visible()
        await page.locator("#token").fill(token)
        await page.keyboard.press("Enter")
    await expect(page.locator("#counts")).to_have_text("2 of 4 prompts match")
    for link, kind in (("#export-csv", "csv"), ("#export-jsonl", "jsonl")):
        async with page.expect_download() as started:
            await page.click(link)
        download = await started.value
        assert download.suggested_filename.endswith(f".{kind}")
        body = await asyncio.to_thread(Path(await download.path()).read_text)
        lines = body.splitlines()
        if kind == "csv":
            assert lines[0].startswith("prompt_id,category,prompt,")
            lines = lines[1:]
        assert len(lines) == 2, body  # the filter's prompts, p1 and p3
        assert ("p1" in lines[0], "p3" in lines[1]) == (True, True), body
