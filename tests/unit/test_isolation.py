"""Each test starts from an empty AWS and fresh settings (tests/support.py copies the tables, the
bucket and the sender identity in once per test instead of creating them).

The first test leaves something everywhere a test can; the second, run after it in the same
process, must find none of it. pytest runs a module's tests in file order, and `make test`
sends a whole module to one xdist worker (--dist loadfile)."""
from __future__ import annotations

from chalicelib import aws
from chalicelib.settings import get_settings
from chalicelib.store import ALL_MODELS
from tests import factories

EXTRA_TABLE = "isolation-extra"
EXTRA_BUCKET = "isolation-extra-bucket"

_left_behind: dict[str, object] = {}


def _bucket() -> str:
    from chalicelib.settings import environment

    return environment().bucket


def _assert_pristine() -> None:
    for model in ALL_MODELS:
        assert model.exists(), model.Meta.table_name
        assert model.count() == 0, f"{model.Meta.table_name} is not empty"
    dynamodb = aws.client("dynamodb")
    assert set(dynamodb.list_tables()["TableNames"]) == {model.Meta.table_name for model in ALL_MODELS}
    s3 = aws.client("s3")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == [_bucket()]
    assert s3.list_objects_v2(Bucket=_bucket()).get("KeyCount") == 0
    assert not s3.list_multipart_uploads(Bucket=_bucket()).get("Uploads")
    assert s3.get_bucket_encryption(Bucket=_bucket())["ServerSideEncryptionConfiguration"]["Rules"]
    assert factories.sent_mail() == []
    ses = aws.client("ses")
    assert ses.list_identities()["Identities"] == [get_settings().mail.sender_email]
    assert aws.client("sqs").list_queues().get("QueueUrls") is None


def test_1_leaves_something_everywhere():
    _assert_pristine()
    # GIVEN a test that writes to every kind of state it can reach
    person = factories.make_user()
    assert person.user.id == 1
    s3 = aws.client("s3")
    s3.put_object(Bucket=_bucket(), Key="audio/1", Body=b"x")
    s3.create_multipart_upload(Bucket=_bucket(), Key="audio/2")
    s3.create_bucket(Bucket=EXTRA_BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    aws.client("dynamodb").create_table(
        TableName=EXTRA_TABLE, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
    )
    aws.client("ses").verify_email_identity(EmailAddress="someone@example.org")
    aws.client("ses").send_email(
        Source=get_settings().mail.sender_email, Destination={"ToAddresses": ["a@example.org"]},
        Message={"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}},
    )
    aws.client("sqs").create_queue(QueueName="isolation")  # a service Wisp's set-up does not use
    assert factories.sent_mail()
    _left_behind["settings"] = get_settings()


def test_2_finds_nothing_of_it():
    # WHEN the next test starts THEN all of that is gone
    _assert_pristine()
    if "settings" in _left_behind:  # run after test_1 (not alone)
        assert get_settings() is not _left_behind["settings"], "the settings cache was not cleared"
    # AND ids start again from 1 (the counters table is empty too)
    assert factories.make_user().user.id == 1
