"""GET /api/jobs/events: live job updates as short Server-Sent Events responses (spec §7).

Its own router under the jobs prefix and tag, so the OpenAPI document lists it with the other
job routes; Chalice registers both blueprints under ``/api/jobs``.
"""
from __future__ import annotations

from chalice import Response

from ..auth import UserGate
from ..services import event_stream
from ._http import Call, Router, text_response

router = Router(__name__, prefix="/api/jobs", tag="jobs")


@router.route("/events", "GET", gate=UserGate("user+V+T", renew=False), response=str,
              response_media="text/event-stream")
def events(call: Call) -> Response:
    """Live updates of your jobs as Server-Sent Events.

    Events are ``job_created``, ``job_updated`` and ``job_deleted`` with the job id as data. Each
    response is short and ends by itself with a ``wisp_position`` event whose ``id:`` and
    ``data:`` both carry the stream position, and a ``retry:`` line. An EventSource client
    reconnects after ``retry`` milliseconds with ``Last-Event-ID`` and gets every event it missed
    in between (the last 15 minutes are kept); a client that reads only ``data:`` passes the
    position as the ``last_event_id`` query parameter instead (the header wins). A connection
    without a position starts at the newest event. Polling this route does not extend or renew
    the session.
    """
    # The header wins: EventSource sends it on every reconnect, while the URL keeps the value of
    # the first connection. The query parameter is read here rather than declared, so the
    # operation keeps upstream's signature (and generated clients stay the same); like the
    # header, a value that is not a position of ours counts as absent.
    raw = call.header("last-event-id")
    if event_stream.Position.parse(raw) is None:
        raw = (call.request.query_params or {}).get("last_event_id")
    body = event_stream.respond(int(call.principal.user.id), call.principal.token, raw)
    return text_response(body.encode("utf-8"), content_type=event_stream.CONTENT_TYPE,
                         headers={**event_stream.HEADERS, **call.headers})
