"""The annotation page: its static files and the API its script calls.

The page and its script are plain files from this package, served with a strict
Content-Security-Policy (no inline script or style, nothing from elsewhere). The API under
``/annotate/api/`` is authorised by the annotator's session, never by the admin write token:
the session token travels in an ``HttpOnly; SameSite=Strict`` cookie scoped to that path, so
the page's script never sees it (an injected script could not steal it) and another site
cannot make the browser send it.
"""

from __future__ import annotations

from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Cookie, Depends, Request, Response
from fastapi.responses import JSONResponse

from harmrank.common.errors import ErrorBody, NotFound, error_response
from harmrank.gateway.annotation import service
from harmrank.gateway.annotation.schemas import PageItem, PageState, SignIn, Skip, Submission
from harmrank.gateway.annotation.sign_in_limit import (
    SignInLimiter,
    client_address,
    sign_in_limiter,
)
from harmrank.gateway.db.annotation_models import AnnotationInvitation
from harmrank.gateway.deps import Session

COOKIE = "harmrank_annotator"
API_PREFIX = "/annotate/api"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
STATIC = {
    "index.html": "text/html; charset=utf-8",
    "admin.html": "text/html; charset=utf-8",
    "annotate.js": "text/javascript; charset=utf-8",
    "admin.js": "text/javascript; charset=utf-8",
    "annotate.css": "text/css; charset=utf-8",
}


async def secure_headers(response: Response) -> None:
    response.headers.update(SECURITY_HEADERS)


router = APIRouter(
    prefix="/annotate", tags=["annotation page"], dependencies=[Depends(secure_headers)]
)
_ANNOTATOR: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Not signed in"},
    403: {"model": ErrorBody, "description": "Content warning not accepted yet"},
}
_ITEM: dict[int | str, dict[str, Any]] = {
    **_ANNOTATOR,
    409: {"model": ErrorBody, "description": "Not waiting for this annotator"},
    422: {"model": ErrorBody, "description": "A tie, a gap, or a missing label"},
}


def _file(name: str) -> Response:
    if name not in STATIC:
        raise NotFound(f"no file {name!r}")
    body = resources.files("harmrank.gateway.annotation").joinpath("static", name).read_bytes()
    return Response(body, media_type=STATIC[name], headers=SECURITY_HEADERS)


@router.get("/", include_in_schema=False)
async def page() -> Response:
    return _file("index.html")


@router.get("/admin", include_in_schema=False)
async def admin_page() -> Response:
    return _file("admin.html")


@router.get("/static/{name}", include_in_schema=False)
async def static_file(name: str) -> Response:
    return _file(name)


async def annotator(
    session: Session, token: Annotated[str | None, Cookie(alias=COOKIE)] = None
) -> AnnotationInvitation:
    """The signed-in annotator's invitation (401 without a live session)."""
    return await service.signed_in(session, token)


Annotator = Annotated[AnnotationInvitation, Depends(annotator)]


def _set_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(service.SESSION_LIFETIME.total_seconds()),
        path=API_PREFIX,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


@router.post(
    "/api/session",
    response_model=PageState,
    responses={
        403: {"model": ErrorBody, "description": "Invalid token"},
        409: {"model": ErrorBody, "description": "The name is taken by another annotator"},
        429: {"model": ErrorBody, "description": "Too many failed sign-ins; see Retry-After"},
    },
)
async def sign_in(
    body: SignIn,
    request: Request,
    response: Response,
    session: Session,
    limiter: Annotated[SignInLimiter, Depends(sign_in_limiter)],
) -> PageState | JSONResponse:
    """Sign in with your name and invitation token; the session is kept in a cookie. Failed
    sign-ins are limited per client address (429 with `Retry-After` past the limit)."""
    client = client_address(request)
    wait = limiter.retry_after(client)
    if wait is not None:
        message = f"too many failed sign-ins from this address; try again in {wait} s"
        body_429 = ErrorBody(error=message, error_type="rate_limited")
        return error_response(429, body_429, {"Retry-After": str(wait)})
    try:
        token, state = await service.sign_in(session, body)
    except service.InvitationRefused:
        limiter.failed(client)
        raise
    _set_cookie(request, response, token)
    return state


@router.delete("/api/session", status_code=204)
async def sign_out(
    response: Response,
    session: Session,
    token: Annotated[str | None, Cookie(alias=COOKIE)] = None,
) -> None:
    """Sign out: the session ends and its cookie is cleared."""
    await service.sign_out(session, token)
    response.delete_cookie(COOKIE, path=API_PREFIX, httponly=True, samesite="strict")


@router.get("/api/state", responses=_ANNOTATOR)
async def get_state(invitation: Annotator, session: Session) -> PageState:
    """Who is signed in, whether the warning was accepted, and progress."""
    return await service.state(session, invitation)


@router.post("/api/warning", responses=_ANNOTATOR)
async def accept_warning(invitation: Annotator, session: Session) -> PageState:
    """Record that the content warning was read and accepted."""
    return await service.accept_warning(session, invitation)


@router.get("/api/next", responses=_ANNOTATOR)
async def next_item(invitation: Annotator, session: Session) -> PageItem:
    """The next item waiting for you (the one you left off at), or finished."""
    return await service.next_item(session, invitation)


@router.post("/api/items/{prompt_id}/ranking", responses=_ITEM)
async def submit(
    prompt_id: str, body: Submission, invitation: Annotator, session: Session
) -> PageItem:
    """Submit your ranking of an item (ranks by label); answers the next item."""
    return await service.submit(session, invitation, prompt_id, body)


@router.post("/api/items/{prompt_id}/skip", responses=_ITEM)
async def skip(prompt_id: str, body: Skip, invitation: Annotator, session: Session) -> PageItem:
    """Skip an item (it goes to someone else); answers the next item."""
    return await service.skip(session, invitation, prompt_id, body)
