"""One router per Project-W section (tag), same names and prefixes as upstream."""
from __future__ import annotations

import importlib

# Modules that define a ``router``; the order is the order of the OpenAPI document.
ROUTE_MODULES = [
    "general",
    "users",
    "local_account",
    "oidc",
    "ldap",
    "jobs",
    "job_events",
    "runners",
    "admins",
    "admin_site",
    "wisp",
]


def all_routers() -> list:
    return [importlib.import_module(f"{__name__}.{name}").router for name in ROUTE_MODULES]
