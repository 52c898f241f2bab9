"""One router per Project-W section (tag), same names and prefixes as upstream."""
from __future__ import annotations

import importlib

# Modules that define a ``router``; the order is the order of the OpenAPI document.
ROUTE_MODULES = [
    "general",
    "users",
    "local_account",
    "jobs",
    "job_events",
    "runners",
    "admins",
    "admin_site",
    "wisp",
]


def all_routers() -> list:
    routers = []
    for name in ROUTE_MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{name}":
                continue  # section not written yet
            raise
        routers.append(module.router)
    return routers
