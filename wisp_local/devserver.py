"""Local-only glue for Chalice's development gateway (tests and ``make run``; never on Lambda).

Chalice's local gateway differs from API Gateway in two ways Wisp depends on. Its route matcher
does not understand API Gateway's greedy ``{proxy+}`` parameter,
which Wisp uses for its 404 view. This teaches it: concrete routes are tried first, greedy ones
last, exactly as API Gateway does.

Its access log (one line per request, written straight to stderr) is sent through the
``wisp.devserver`` logger instead, whose handler shortens the secrets in request lines: runners
send their ``session_token`` and mail links their ``token`` as query parameters.
"""
from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs, urlparse

from chalice import local

_installed = False
access_log = logging.getLogger("wisp.devserver")


def install() -> None:
    """Make Chalice's local gateway behave like API Gateway for Wisp's routes."""
    global _installed
    if _installed:
        return
    original = local.RouteMatcher.match_route

    def match_route(self: local.RouteMatcher, url: str) -> local.MatchResult:
        try:
            return original(self, url)
        except ValueError:
            pass
        parsed = urlparse(url)
        path = parsed.path
        if path != "/" and path.endswith("/"):
            path = path[:-1]
        parts = path.split("/")
        for route_url in sorted(self.route_urls, key=len, reverse=True):
            if not route_url.endswith("+}"):
                continue
            route_parts = route_url.split("/")
            head, greedy = route_parts[:-1], route_parts[-1]
            if len(parts) <= len(head):
                continue
            captured = {}
            for got, want in zip(parts, head):
                if want.startswith("{") and want.endswith("}"):
                    captured[want[1:-1]] = got
                elif got != want:
                    break
            else:
                captured[greedy[1:-2]] = "/".join(parts[len(head):])
                return local.MatchResult(route_url, captured, parse_qs(parsed.query, keep_blank_values=True))
        raise ValueError("No matching route found for: %s" % url)

    local.RouteMatcher.match_route = match_route  # type: ignore[method-assign]

    # Chalice's local gateway compares the whole Content-Type header (with its parameters) to
    # the binary types literally; API Gateway honours "*/*", so every body is binary there.
    def is_binary(self: local.LambdaEventConverter, headers: dict) -> bool:
        return "*/*" in self._binary_types or headers.get("content-type", "") in self._binary_types

    local.LambdaEventConverter._is_binary = is_binary  # type: ignore[method-assign]

    # BaseHTTPRequestHandler writes its access and error lines to stderr as they are
    def log_message(self: local.ChaliceRequestHandler, format: str, *args: Any) -> None:  # noqa: A002
        access_log.info("%s %s", self.address_string(), format % args)

    def log_error(self: local.ChaliceRequestHandler, format: str, *args: Any) -> None:  # noqa: A002
        access_log.warning("%s %s", self.address_string(), format % args)

    local.ChaliceRequestHandler.log_message = log_message  # type: ignore[method-assign]
    local.ChaliceRequestHandler.log_error = log_error  # type: ignore[method-assign]
    _installed = True
