"""Human rankings: the annotation page, invitations and assignment, and agreement among humans."""

from harmrank.gateway.annotation.api_admin import router as admin_router
from harmrank.gateway.annotation.api_page import router as page_router

__all__ = ["admin_router", "page_router"]
