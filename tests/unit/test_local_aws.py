"""The local AWS of ``make run`` (wisp_local/emulated_aws.py): moto's server behind one lock, and its
state kept across restarts. Each test runs moto's server in this process over real HTTP; a
"restart" stops it, makes moto forget everything, and starts a new one on the same directory."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import boto3
import pytest
import requests
from botocore.config import Config

from wisp_local import emulated_aws
from wisp_local.stack import LocalAws

REGION = "eu-central-1"
MIB = 1024 * 1024


def forget_everything() -> None:
    """What a new process starts with: moto with no state at all."""
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()


@pytest.fixture(autouse=True)
def aws_mock():
    """Overrides the suite's moto mock: these tests run moto's server, which must not be intercepted."""
    forget_everything()
    yield
    forget_everything()


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


class Stack:
    """One local AWS 'process' on a state directory."""

    def __init__(self, state: Path, **options: object) -> None:
        self.aws = LocalAws(0)
        self.messages: list[str] = []
        self.restored = self.aws.restore(state, log=self.messages.append, **options)

    def client(self, service: str):
        return boto3.client(service, endpoint_url=self.aws.url, region_name=REGION, aws_access_key_id="local",
                            aws_secret_access_key="local", config=Config(retries={"max_attempts": 1}))

    def stop(self) -> None:
        self.aws.stop()
        forget_everything()

    def kill(self) -> None:
        """As if the process died: no last snapshot, the journal as it is."""
        self.aws.stop(snapshot=False)
        forget_everything()


def make_table(ddb, name: str = "jobs") -> None:
    ddb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "N"},
                              {"AttributeName": "owner", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[{"IndexName": "by_owner", "KeySchema": [{"AttributeName": "owner", "KeyType": "HASH"}],
                                 "Projection": {"ProjectionType": "ALL"}}],
    )
    ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires"})


ITEM = {"pk": {"S": "job#1"}, "sk": {"N": "1"}, "owner": {"S": "ada"}, "blob": {"B": b"\x00\xff\x10"},
        "tags": {"SS": ["a", "b"]}, "nums": {"NS": ["1", "2.5"]}, "doc": {"M": {"l": {"L": [{"BOOL": True}, {"NULL": True}]}}}}


def scan(ddb, name: str = "jobs") -> list[dict]:
    return sorted(ddb.scan(TableName=name)["Items"], key=lambda i: (i["pk"]["S"], i["sk"]["N"]))


def test_a_restart_brings_back_tables_objects_unfinished_uploads_and_mail(state):
    # GIVEN a table (index, TTL, every attribute type), a bucket with settings, objects (one from a
    # completed multipart upload), an unfinished upload and a sent mail; part of it only in the journal
    stack = Stack(state)
    ddb, s3, ses = stack.client("dynamodb"), stack.client("s3"), stack.client("ses")
    make_table(ddb)
    ddb.put_item(TableName="jobs", Item=ITEM)
    s3.create_bucket(Bucket="audio", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_encryption(Bucket="audio", ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    s3.put_bucket_lifecycle_configuration(Bucket="audio", LifecycleConfiguration={"Rules": [{
        "ID": "abort", "Status": "Enabled", "Filter": {"Prefix": ""},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 2}}]})
    s3.put_object(Bucket="audio", Key="a b/c+d.wav", Body=b"RIFF\x00\xffwav", ContentType="audio/wav",
                  Metadata={"file-name": "talk%20one.wav"})
    big = s3.create_multipart_upload(Bucket="audio", Key="uploads/1/done", ContentType="video/mp4")["UploadId"]
    first = s3.upload_part(Bucket="audio", Key="uploads/1/done", UploadId=big, PartNumber=1, Body=b"x" * (5 * MIB))
    second = s3.upload_part(Bucket="audio", Key="uploads/1/done", UploadId=big, PartNumber=2, Body=b"tail")
    s3.complete_multipart_upload(Bucket="audio", Key="uploads/1/done", UploadId=big, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": first["ETag"]}, {"PartNumber": 2, "ETag": second["ETag"]}]})
    ses.verify_email_identity(EmailAddress="wisp@example.org")
    stack.aws.persistence.compact()  # everything so far is in the snapshot, the rest only in the journal
    ddb.update_item(TableName="jobs", Key={"pk": {"S": "job#1"}, "sk": {"N": "1"}},
                    UpdateExpression="SET progress = :p", ExpressionAttributeValues={":p": {"N": "55"}})
    ddb.put_item(TableName="jobs", Item={"pk": {"S": "job#2"}, "sk": {"N": "2"}, "owner": {"S": "bob"}})
    pending = s3.create_multipart_upload(Bucket="audio", Key="uploads/1/pending", ContentType="audio/mpeg",
                                         Metadata={"file-name": "long.mp3"})["UploadId"]
    part = s3.upload_part(Bucket="audio", Key="uploads/1/pending", UploadId=pending, PartNumber=1, Body=b"p" * (5 * MIB))
    ses.send_email(Source="wisp@example.org", Destination={"ToAddresses": ["ada@example.org"]},
                   Message={"Subject": {"Data": "Done"}, "Body": {"Text": {"Data": "Your transcript is ready"}}})
    items = scan(ddb)
    done_etag = s3.head_object(Bucket="audio", Key="uploads/1/done")["ETag"]
    stack.stop()

    # WHEN local AWS starts again on the same directory
    stack = Stack(state)
    ddb, s3, ses = stack.client("dynamodb"), stack.client("s3"), stack.client("ses")

    # THEN the table, its index and TTL, and every item are there as they were
    assert scan(ddb) == items
    table = ddb.describe_table(TableName="jobs")["Table"]
    assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == ["by_owner"]
    assert ddb.query(TableName="jobs", IndexName="by_owner", KeyConditionExpression="#o = :o",
                     ExpressionAttributeNames={"#o": "owner"}, ExpressionAttributeValues={":o": {"S": "bob"}})["Count"] == 1
    assert ddb.describe_time_to_live(TableName="jobs")["TimeToLiveDescription"]["AttributeName"] == "expires"
    # AND the bucket with its settings and objects (bytes, type, metadata, ETag)
    assert s3.get_bucket_lifecycle_configuration(Bucket="audio")["Rules"][0]["ID"] == "abort"
    assert s3.get_bucket_encryption(Bucket="audio")["ServerSideEncryptionConfiguration"]["Rules"]
    obj = s3.get_object(Bucket="audio", Key="a b/c+d.wav")
    assert (obj["Body"].read(), obj["ContentType"], obj["Metadata"]) == (
        b"RIFF\x00\xffwav", "audio/wav", {"file-name": "talk%20one.wav"})
    assert s3.head_object(Bucket="audio", Key="uploads/1/done")["ETag"] == done_etag
    # AND the unfinished upload, under the id its client holds: it can be listed, resumed and completed
    parts = s3.list_parts(Bucket="audio", Key="uploads/1/pending", UploadId=pending)["Parts"]
    assert [(p["PartNumber"], p["ETag"]) for p in parts] == [(1, part["ETag"])]
    last = s3.upload_part(Bucket="audio", Key="uploads/1/pending", UploadId=pending, PartNumber=2, Body=b"end")
    s3.complete_multipart_upload(Bucket="audio", Key="uploads/1/pending", UploadId=pending, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": part["ETag"]}, {"PartNumber": 2, "ETag": last["ETag"]}]})
    done = s3.get_object(Bucket="audio", Key="uploads/1/pending")
    assert (done["ContentLength"], done["ContentType"], done["Metadata"]) == (5 * MIB + 3, "audio/mpeg", {"file-name": "long.mp3"})
    # AND the SES identity and the sent mail
    assert ses.list_identities()["Identities"] == ["wisp@example.org"]
    r = requests.get(f"{stack.aws.url}/moto-api/data.json", timeout=10)
    assert r.status_code == 200, r.text[-3000:]
    sent = r.json()["ses"]["Message"]
    assert [m["body"] for m in sent] == ["Your transcript is ready"]
    stack.stop()


def test_a_killed_process_loses_no_answered_change(state):
    # GIVEN changes answered after the last snapshot, and a process that dies without a last snapshot
    stack = Stack(state)
    ddb, s3 = stack.client("dynamodb"), stack.client("s3")
    make_table(ddb)
    s3.create_bucket(Bucket="audio", CreateBucketConfiguration={"LocationConstraint": REGION})
    upload = s3.create_multipart_upload(Bucket="audio", Key="uploads/2/x", ContentType="audio/wav")["UploadId"]
    part = s3.upload_part(Bucket="audio", Key="uploads/2/x", UploadId=upload, PartNumber=1, Body=b"audio")
    for n in range(20):
        ddb.put_item(TableName="jobs", Item={"pk": {"S": f"job#{n}"}, "sk": {"N": str(n)}, "owner": {"S": "ada"}})
    ddb.delete_item(TableName="jobs", Key={"pk": {"S": "job#3"}, "sk": {"N": "3"}})
    stack.kill()

    # WHEN it starts again THEN the journal brings back every change, the upload under its own id
    stack = Stack(state)
    assert stack.restored.replayed > 20
    ddb, s3 = stack.client("dynamodb"), stack.client("s3")
    assert len(scan(ddb)) == 19
    assert [p["ETag"] for p in s3.list_parts(Bucket="audio", Key="uploads/2/x", UploadId=upload)["Parts"]] == [part["ETag"]]
    stack.stop()


def test_the_journal_stays_short_however_long_the_stack_runs(state):
    # GIVEN a runner row written like a heartbeat, many more times than the compaction limit
    stack = Stack(state, compact_entries=50)
    ddb = stack.client("dynamodb")
    make_table(ddb)
    longest = 0
    for beat in range(600):
        ddb.update_item(TableName="jobs", Key={"pk": {"S": "runner#1"}, "sk": {"N": "0"}},
                        UpdateExpression="SET beat = :b", ExpressionAttributeValues={":b": {"N": str(beat)}})
        stack.aws.persistence.compact_if_due()  # what the background thread does when the limit is reached
        longest = max(longest, stack.aws.persistence.journal.entries)

    # THEN the journal never held more than the limit, and a start after a kill replays at most that
    assert longest < 50
    stack.kill()
    journals = sorted((state / "aws").glob("journal-*.jsonl"))
    assert len(journals) == 1 and len(journals[0].read_bytes().splitlines()) < 50
    stack = Stack(state)
    assert stack.restored.replayed < 50
    assert scan(stack.client("dynamodb"))[0]["beat"] == {"N": "599"}
    stack.stop()


def test_the_background_thread_compacts_when_the_journal_is_full(state):
    stack = Stack(state, compact_entries=20)
    ddb = stack.client("dynamodb")
    make_table(ddb)
    first = stack.aws.persistence.generation
    for n in range(40):
        ddb.put_item(TableName="jobs", Item={"pk": {"S": f"job#{n}"}, "sk": {"N": "0"}})
    deadline = threading.Event()
    for _ in range(100):
        if stack.aws.persistence.generation > first:
            break
        deadline.wait(0.05)
    assert stack.aws.persistence.generation > first
    stack.stop()


# --------------------------------------------------------------------------------------------
# Damaged state: one line that names the file and the way out; nothing intact dropped silently
# --------------------------------------------------------------------------------------------


def saved_with_journal(state: Path) -> Path:
    """State with a snapshot (one table, two items, one object) and a journal of three writes."""
    stack = Stack(state)
    ddb, s3 = stack.client("dynamodb"), stack.client("s3")
    make_table(ddb)
    s3.create_bucket(Bucket="audio", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket="audio", Key="kept.wav", Body=b"kept")
    for n in range(2):
        ddb.put_item(TableName="jobs", Item={"pk": {"S": f"snap#{n}"}, "sk": {"N": "0"}})
    stack.aws.persistence.compact()
    for n in range(3):
        ddb.put_item(TableName="jobs", Item={"pk": {"S": f"journal#{n}"}, "sk": {"N": "0"}})
    stack.kill()
    [journal] = (state / "aws").glob("journal-*.jsonl")
    return journal


def expect_refusal(state: Path, named: Path) -> str:
    with pytest.raises(emulated_aws.StateError) as refused:
        Stack(state)
    message = str(refused.value)
    assert str(named) in message and "WISP_STATE_RECOVER=1" in message and "\n" not in message
    forget_everything()
    return message


def test_a_damaged_journal_line_stops_the_start_and_recovery_keeps_the_rest(state):
    journal = saved_with_journal(state)
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(lines[0] + b'{"headers": {"Host": "x"}, "meth' + b"\n" + b"".join(lines[2:]))

    expect_refusal(state, journal)
    assert journal.exists()  # refused, not touched

    stack = Stack(state, recover=True)
    pks = [i["pk"]["S"] for i in scan(stack.client("dynamodb"))]
    assert pks == ["journal#0", "journal#2", "snap#0", "snap#1"]
    assert any("1 unreadable entries" in s for s in stack.restored.skipped)
    assert list((state / "aws").glob("damaged-*/journal-*.jsonl"))  # the damaged file is kept
    stack.stop()


def test_an_entry_cut_short_by_a_kill_is_left_out_with_a_note(state):
    journal = saved_with_journal(state)
    data = journal.read_bytes()
    journal.write_bytes(data[:-40])  # the last write was cut short: it was never answered

    stack = Stack(state)
    assert [i["pk"]["S"] for i in scan(stack.client("dynamodb"))] == ["journal#0", "journal#1", "snap#0", "snap#1"]
    assert any("cut short" in note for note in stack.restored.notes)
    stack.stop()


def test_a_damaged_snapshot_stops_the_start(state):
    saved_with_journal(state)
    snapshot = state / "aws" / "snapshot.json"
    snapshot.write_bytes(snapshot.read_bytes()[:100])

    expect_refusal(state, snapshot)
    assert snapshot.exists()


def test_a_missing_object_file_stops_the_start_and_recovery_loads_everything_else(state):
    saved_with_journal(state)
    [blob] = (state / "aws" / "blobs").iterdir()
    blob.write_bytes(b"changed")

    message = expect_refusal(state, state / "aws" / "snapshot.json")
    assert str(blob) in message

    stack = Stack(state, recover=True)
    assert len(scan(stack.client("dynamodb"))) == 5
    assert stack.client("s3").list_objects_v2(Bucket="audio").get("KeyCount") == 0
    assert any("kept.wav" in s for s in stack.restored.skipped)
    assert list((state / "aws").glob(f"damaged-*/{blob.name}"))
    stack.stop()


def test_a_second_stack_on_the_same_state_refuses_to_start(state):
    first = Stack(state)
    with pytest.raises(emulated_aws.StateError, match="in use by another running stack"):
        Stack(state)
    first.stop()
    Stack(state).stop()  # free again once the first one stopped


def test_a_journal_that_does_not_continue_the_snapshot_stops_the_start(state):
    journal = saved_with_journal(state)
    later = journal.with_name("journal-99.jsonl")
    journal.rename(later)

    expect_refusal(state, later)


# --------------------------------------------------------------------------------------------
# Recordings of earlier versions (moto's recorder)
# --------------------------------------------------------------------------------------------


def test_a_recording_of_an_earlier_version_is_loaded_once_and_kept(state, tmp_path):
    # GIVEN moto's recorder file from an earlier version: entries that share a line (two unlocked
    # writes each), and a multipart upload, whose id the recorder did not keep
    from moto.moto_api import recorder

    recording = tmp_path / "recording.jsonl"
    aws = LocalAws(0)
    recorder._location = str(recording)
    recorder.start_recording()
    try:
        s3 = boto3.client("s3", endpoint_url=aws.url, region_name=REGION, aws_access_key_id="local",
                          aws_secret_access_key="local")
        s3.create_bucket(Bucket="audio", CreateBucketConfiguration={"LocationConstraint": REGION})
        upload = s3.create_multipart_upload(Bucket="audio", Key="uploads/3/a", ContentType="audio/wav")["UploadId"]
        part = s3.upload_part(Bucket="audio", Key="uploads/3/a", UploadId=upload, PartNumber=1, Body=b"legacy")
        s3.put_object(Bucket="audio", Key="one", Body=b"1")
        s3.put_object(Bucket="audio", Key="two", Body=b"2")
    finally:
        recorder.stop_recording()
        aws.stop()
        forget_everything()
    lines = recording.read_text().splitlines()
    state.mkdir()
    legacy = state / "moto-recording.jsonl"
    legacy.write_text("\n".join(lines[:-2]) + "\n" + lines[-2] + lines[-1] + "\n\n")

    # WHEN the stack starts on that directory
    stack = Stack(state)

    # THEN everything is there, the upload under its old id, and the old file is kept under a new name
    s3 = stack.client("s3")
    assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket="audio")["Contents"]) == ["one", "two"]
    assert [p["ETag"] for p in s3.list_parts(Bucket="audio", Key="uploads/3/a", UploadId=upload)["Parts"]] == [part["ETag"]]
    assert not legacy.exists() and legacy.with_name("moto-recording.jsonl.migrated").exists()
    assert any("earlier version" in note for note in stack.restored.notes)
    stack.stop()

    # AND the next start reads the new state only
    stack = Stack(state)
    assert stack.restored.replayed == 0 and stack.restored.objects == 2 and stack.restored.uploads == 1
    stack.stop()


def test_a_damaged_recording_of_an_earlier_version_stops_the_start_until_recovery(state):
    state.mkdir()
    legacy = state / "moto-recording.jsonl"
    entry = ('{"headers": {"Host": "127.0.0.1:8001", "Authorization": "AWS4-HMAC-SHA256 Credential=x/20250101/'
             'us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0"}, "method": "PUT", "url": '
             '"http://127.0.0.1:8001/bucket-%d", "body": "", "body_encoded": false}')
    legacy.write_text(entry % 1 + "\n" + '{"headers": {"Host": "127.0.0.1' + "\n" + entry % 2 + "\n")

    message = expect_refusal(state, legacy)
    assert "earlier version" in message and "line 2" in message

    stack = Stack(state, recover=True)
    assert sorted(b["Name"] for b in stack.client("s3").list_buckets()["Buckets"]) == ["bucket-1", "bucket-2"]
    assert legacy.with_name("moto-recording.jsonl.migrated").exists()
    stack.stop()


# --------------------------------------------------------------------------------------------
# Concurrency
# --------------------------------------------------------------------------------------------


def test_cancelled_transactions_lose_no_concurrent_write(state):
    # GIVEN threads writing items while others run transactions that DynamoDB cancels (moto's
    # cancel puts back a copy of whole tables taken before; unserialized, that loses other writes)
    stack = Stack(state)
    ddb = stack.client("dynamodb")
    make_table(ddb)
    ddb.put_item(TableName="jobs", Item={"pk": {"S": "lock"}, "sk": {"N": "0"}})
    failures: list[str] = []

    def writer(worker: int) -> None:
        client = stack.client("dynamodb")
        for n in range(40):
            try:
                client.put_item(TableName="jobs", Item={"pk": {"S": f"w{worker}#{n}"}, "sk": {"N": "0"}})
            except Exception as exc:  # noqa: BLE001
                failures.append(repr(exc))

    def canceller() -> None:
        client = stack.client("dynamodb")
        for _ in range(40):
            try:
                client.transact_write_items(TransactItems=[
                    {"Put": {"TableName": "jobs", "Item": {"pk": {"S": "other"}, "sk": {"N": "1"}}}},
                    {"ConditionCheck": {"TableName": "jobs", "Key": {"pk": {"S": "lock"}, "sk": {"N": "0"}},
                                        "ConditionExpression": "attribute_not_exists(pk)"}},
                ])
            except client.exceptions.TransactionCanceledException:
                pass
            except Exception as exc:  # noqa: BLE001
                failures.append(repr(exc))

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(6)] + [threading.Thread(target=canceller) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # THEN every write is there and nothing failed
    assert failures == []
    pks = {i["pk"]["S"] for i in ddb.scan(TableName="jobs")["Items"]}
    assert {f"w{w}#{n}" for w in range(6) for n in range(40)} <= pks and "other" not in pks
    stack.stop()


def test_journal_lines_stay_whole_under_concurrent_writes(state):
    stack = Stack(state)
    s3 = stack.client("s3")
    s3.create_bucket(Bucket="audio", CreateBucketConfiguration={"LocationConstraint": REGION})

    def put(worker: int) -> None:
        client = stack.client("s3")
        for n in range(15):
            client.put_object(Bucket="audio", Key=f"{worker}/{n}", Body=bytes([worker]) * 20000)

    threads = [threading.Thread(target=put, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    [journal] = (state / "aws").glob("journal-*.jsonl")
    entries = [json.loads(line) for line in journal.read_bytes().splitlines()]
    assert len(entries) == 1 + 6 * 15  # the bucket, then every object
    stack.stop()


def test_a_put_cut_short_is_refused_as_s3_does_and_stores_nothing():
    """A browser that pauses an upload (or loses its connection) ends its part PUT mid-body. S3 stores
    nothing and answers 400 IncompleteBody; moto alone would store the truncated bytes as the part,
    and the web app could then not continue the upload after a reload (the part's size is wrong)."""
    import io

    app = emulated_aws.SerializedMoto()
    started: dict[str, object] = {}
    environ = {"REQUEST_METHOD": "PUT", "PATH_INFO": "/wisp-local/uploads/x", "QUERY_STRING": "partNumber=1&uploadId=u",
               "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "5000", "HTTP_HOST": "127.0.0.1:5000",
               "wsgi.url_scheme": "http", "CONTENT_LENGTH": "16", "wsgi.input": io.BytesIO(b"only eight")}
    body = b"".join(app(environ, lambda status, headers: started.update(status=status)))
    assert started["status"] == "400 Bad Request"
    assert b"<Code>IncompleteBody</Code>" in body
