"""With write tokens set: admin routes need one; the page's API needs the annotator's session.

The token middleware leaves ``/annotate/`` to the page's own authentication (its
``exempt_prefixes``); the routes there refuse anyone without a live annotator session.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp
from tests.gateway.annotation.conftest import (
    DATASET,
    Sessions,
    by_label,
    calm_items,
    make_app,
    seed_dataset,
)

ADMIN_TOKEN = "admin-secret"


@pytest.fixture
def base_url(serve_app: Callable[[ASGIApp], str], db_url: str, migrated_engine: AsyncEngine) -> str:
    return serve_app(make_app(db_url, tokens=[ADMIN_TOKEN]))


async def test_admin_writes_need_the_token_and_annotators_need_their_session(
    base_url: str, session_maker: Sessions
) -> None:
    admin_headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=base_url, headers=admin_headers, timeout=30) as admin:
        await seed_dataset(admin, session_maker, calm_items(1))
        url = f"/v1/datasets/{DATASET}/annotation/invitations"
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as anonymous:
            assert (await anonymous.post(url, json={})).status_code == 401
            made = await admin.post(url, json={})
            assert made.status_code == 201
            token = made.json()["invitations"][0]["token"]
            # No session: refused by the route, though the middleware lets the path through.
            assert (await anonymous.post("/annotate/api/warning")).status_code == 401
            # The admin token is not an annotator session.
            assert (await admin.post("/annotate/api/warning")).status_code == 401
            signed = await anonymous.post(
                "/annotate/api/session", json={"name": "ann", "token": token}
            )
            assert signed.status_code == 200
            assert (await anonymous.post("/annotate/api/warning")).status_code == 200
            item = (await anonymous.get("/annotate/api/next")).json()
            body = {"ranks": by_label(item, [1, 0, 0]), "seconds": 1}
            done = await anonymous.post(
                f"/annotate/api/items/{item['prompt_id']}/ranking", json=body
            )
            assert done.status_code == 200, done.text
