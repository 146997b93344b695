"""``harmrank annotation invite``: invitations to the annotation page, as sign-in links."""

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
