"""store/base.get_together: items of several tables in one BatchGetItem."""
from __future__ import annotations

from tests.factories import commit_events

from chalicelib.store import transact

from chalicelib.store.base import get_together
from chalicelib.store.counters import Counter, next_id
from chalicelib.store.users import User
from tests.factories import make_user


def test_items_come_back_in_the_order_asked_with_none_for_missing_ones():
    person = make_user()
    next_id("job")
    user, missing, counter = get_together((User, person.user.id), (User, 987654), (Counter, "job"))
    assert isinstance(user, User) and user.email == person.user.email
    assert missing is None and isinstance(counter, Counter) and counter.value == 1


def test_unprocessed_keys_are_asked_for_again(monkeypatch):
    person = make_user()
    client = Counter._get_connection().connection.client
    real = client.batch_get_item
    calls = []

    def throttled_once(RequestItems, **kw):
        calls.append(RequestItems)
        if len(calls) == 1:  # DynamoDB processed nothing this time
            return {"Responses": {}, "UnprocessedKeys": RequestItems}
        return real(RequestItems=RequestItems, **kw)

    monkeypatch.setattr(client, "batch_get_item", throttled_once)
    [user] = get_together((User, person.user.id), consistent=True)
    assert user is not None and user.id == person.user.id and len(calls) == 2
    assert all(r["ConsistentRead"] for items in calls for r in items.values())


class _Refusal:
    status_code = 400


def _cancelled(*codes: str) -> tuple:
    reasons = [{"Code": c, "Message": c} for c in codes]
    return _Refusal(), {"Error": {"Code": "TransactionCanceledException", "Message": f"cancelled {list(codes)}"},
                        "CancellationReasons": reasons, "ResponseMetadata": {"HTTPStatusCode": 400}}


def _refuse_transactions(monkeypatch, times: int, *codes: str) -> list:
    client = Counter._get_connection().connection.client
    seen: list = []

    def refuse(**_kw):
        seen.append(1)
        return _cancelled(*codes) if len(seen) <= times else None

    client.meta.events.register_first("before-call.dynamodb.TransactWriteItems", refuse)
    monkeypatch.setattr("chalicelib.store.transact.time.sleep", lambda s: None)
    seen_undo = lambda: client.meta.events.unregister("before-call.dynamodb.TransactWriteItems", refuse)  # noqa: E731
    monkeypatch.setattr(_Refusal, "undo", staticmethod(seen_undo), raising=False)
    return seen


def _bump(tx):
    tx.update("probe", Counter("probe"), [Counter.value.add(1)])


def test_a_transaction_that_met_another_is_tried_again(monkeypatch):
    from chalicelib.services import events

    seen = _refuse_transactions(monkeypatch, 2, "None", "TransactionConflict")
    commit_events(_bump, (7, events.JOB_UPDATED, 1))
    _Refusal.undo()
    assert len(seen) == 3 and Counter.get("probe").value == 1 and events.latest_seq(7) == 1


def test_endless_conflicts_end_in_503_and_other_refusals_propagate(monkeypatch):
    import pytest

    from chalicelib import errors
    from chalicelib.services import events

    _refuse_transactions(monkeypatch, 99, "None", "TransactionConflict")
    with pytest.raises(errors.ServiceUnavailable):
        commit_events(_bump, (7, events.JOB_UPDATED, 1))
    _Refusal.undo()
    _refuse_transactions(monkeypatch, 1, "ConditionalCheckFailed", "None")
    with pytest.raises(transact.Cancelled):
        commit_events(_bump, (7, events.JOB_UPDATED, 1))
    _Refusal.undo()


def test_single_writes_that_meet_a_transaction_are_retried_by_botocore():
    from botocore.awsrequest import AWSResponse

    from chalicelib.store.base import CONFLICT_ATTEMPTS, retry_write_conflicts

    conflict = (None, {"Error": {"Code": "TransactionConflictException"}})
    assert 0 < retry_write_conflicts(response=conflict, attempts=1) < 1
    assert retry_write_conflicts(response=conflict, attempts=CONFLICT_ATTEMPTS) is None
    assert retry_write_conflicts(response=(None, {"Error": {"Code": "ValidationException"}}), attempts=1) is None

    class Raw:
        def stream(self, **_kw):
            yield b'{"__type":"com.amazonaws.dynamodb.v20120810#TransactionConflictException","message":"busy"}'

    client = Counter._get_connection().connection.client
    sent: list = []

    def conflict_once(request, **_kw):
        sent.append(1)
        if len(sent) == 1:  # DynamoDB: a transaction is in progress on this item
            return AWSResponse(request.url, 400, {"content-type": "application/x-amz-json-1.0"}, Raw())
        return None  # then moto answers

    next_id("probe")
    # (moto's own before-send handler answers every attempt, so a read keeps the count honest)
    client.meta.events.register_first("before-send.dynamodb.GetItem", conflict_once)
    try:
        assert Counter.get("probe").value == 1  # refused once, tried again, answered
    finally:
        client.meta.events.unregister("before-send.dynamodb.GetItem", conflict_once)
    assert len(sent) == 2

