"""``harmrank annotation invite``: invitations to the annotation page, as sign-in links;
``harmrank annotation settings``: k, the label budget and its assignment policy."""

from __future__ import annotations

from typing import Annotated

import typer

from harmrank.cli.client import DEFAULT_BASE_URL, CliError, Gateway
from harmrank.cli.options import BaseUrl, Token, console, fail

app = typer.Typer(help="Invite annotators to rank a dataset in the browser.", no_args_is_help=True)


def sign_in_link(base_url: str, page: str, token: str) -> str:
    # The token rides in the fragment: browsers never send it, so no server log holds it.
    return f"{base_url.rstrip('/')}{page}#token={token}"


@app.command()
def invite(
    dataset: Annotated[str, typer.Argument(help="The dataset to rank.")],
    count: Annotated[int, typer.Option(help="How many invitations.", min=1, max=500)] = 1,
    label: Annotated[str | None, typer.Option(help="Whom they are for (a note).")] = None,
    base_url: BaseUrl = DEFAULT_BASE_URL,
    token: Token = None,
) -> None:
    """Create invitations and print one sign-in link each (shown once: pass each on now)."""
    body: dict[str, object] = {"count": count} | ({"label": label} if label else {})
    try:
        with Gateway(base_url, token) as gateway:
            made = gateway.json("POST", f"/v1/datasets/{dataset}/annotation/invitations", json=body)
    except CliError as error:
        raise fail(error) from None
    out = console()
    out.print(f"{len(made['invitations'])} sign-in link(s) for {made['dataset']!r}; each is "
              "shown only this once and signs one annotator in:")  # fmt: skip
    for invitation in made["invitations"]:
        link = sign_in_link(gateway.base_url, made["page"], invitation["token"])
        out.print(f"  {link}" + (f"  ({invitation['label']})" if invitation["label"] else ""),
                  soft_wrap=True)  # fmt: skip


@app.command()
def settings(
    dataset: Annotated[str, typer.Argument(help="The dataset whose annotation to set.")],
    k: Annotated[int | None, typer.Option(help="Annotators per item.")] = None,
    budget: Annotated[
        int | None, typer.Option(help="Items to send to humans, in expectation.")
    ] = None,
    every_item: Annotated[
        bool, typer.Option("--every-item", help="No budget: every item goes to humans.")
    ] = False,
    policy: Annotated[
        str | None, typer.Option(help="How the budget's items are drawn: uniform or active.")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seeds the draws.")] = None,
    floor: Annotated[
        float | None, typer.Option(help="Active: the share of the uniform chance every item keeps.")
    ] = None,
    base_url: BaseUrl = DEFAULT_BASE_URL,
    token: Token = None,
) -> None:
    """Show the annotation settings, changing the ones given (the others stay as they are)."""
    given: dict[str, object] = {
        "k": k,
        "budget": budget,
        "policy": policy,
        "seed": seed,
        "floor": floor,
    }
    changes = {key: value for key, value in given.items() if value is not None}
    changes |= {"budget": None} if every_item else {}
    path = f"/v1/datasets/{dataset}/annotation/settings"
    try:
        with Gateway(base_url, token) as gateway:
            now = gateway.json("GET", path)
            if changes:
                kept = {key: now[key] for key in (*given, "content_warning")}
                now = gateway.json("PUT", path, json=kept | changes)
    except CliError as error:
        raise fail(error) from None
    out = console()
    budget_text = "every item" if now["budget"] is None else f"{now['budget']} items"
    out.print(f"{now['dataset']}: k {now['k']}; {now['items']} items, {now['annotators']} "
              f"annotators; label budget {budget_text}, policy {now['policy']}, seed "
              f"{now['seed']}, floor {now['floor']:g}")  # fmt: skip
    if now["drawn"] is not None:
        out.print(f"drawn for humans: {now['drawn']} (expected {now['expected']:.1f})")
