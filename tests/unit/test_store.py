"""store/base.get_together: items of several tables in one BatchGetItem."""
from __future__ import annotations

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
