"""Every error leaves in the Project-W shape (issue 12 §5): AWS unreachable is a 503, anything else
a 500 with ``{"detail"}``, never Chalice's own ``{"Code", "Message"}``."""
from __future__ import annotations

import pytest
from botocore.exceptions import ConnectionClosedError, EndpointConnectionError, ReadTimeoutError

from chalicelib import storage
from tests.jobs_support import make_user, submit
from tests.support import body

def _wav() -> bytes:
    import io
    import wave

    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\0\0" * 1600)
    return out.getvalue()


TRANSPORT = [
    ReadTimeoutError(endpoint_url="https://s3.example"),
    ConnectionClosedError(endpoint_url="https://s3.example"),
    EndpointConnectionError(endpoint_url="https://s3.example"),
]


@pytest.mark.parametrize("error", TRANSPORT, ids=lambda e: type(e).__name__)
def test_aws_out_of_reach_is_a_503_in_our_shape(api, monkeypatch, error):
    person = make_user()

    def unreachable(*_a, **_kw):
        raise error

    monkeypatch.setattr(storage, "put", unreachable)
    r = submit(api, person.token, data=_wav())
    assert r.status_code == 503 and set(body(r)) == {"detail"}


class Odd(Exception):
    response = None  # like requests' exceptions: the attribute exists and is None


@pytest.mark.parametrize("error", [Odd("boom"), ValueError("Invalid header value b'audio/wav\\r\\nX: y'")])
def test_an_unexpected_error_is_a_500_in_our_shape(api, monkeypatch, error):
    person = make_user()

    def broken(*_a, **_kw):
        raise error

    monkeypatch.setattr(storage, "put", broken)
    r = submit(api, person.token, data=_wav())
    assert r.status_code == 500 and set(body(r)) == {"detail"}


def test_a_response_that_cannot_be_built_is_a_500_in_our_shape(api, monkeypatch):
    from chalicelib.services import general

    monkeypatch.setattr(general, "about", lambda: object())  # not serialisable
    r = api.get("/api/about")
    assert r.status_code == 500 and set(body(r)) == {"detail"}


def test_a_content_type_with_a_line_break_is_a_422_at_the_door(api):
    person = make_user()
    r = api.post("/api/wisp/uploads", json={"file_name": "a.wav", "content_type": "audio/wav\r\nX-Evil: 1", "size": 10},
                 token=person.token)
    assert r.status_code == 422 and body(r)["detail"][0]["loc"] == ["body", "content_type"]
