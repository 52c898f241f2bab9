"""Creates what Wisp needs in an AWS account: tables, the bucket, the SES sender identity.

Used by the local stack (against moto's server) and by the tests. The deploy path derives its
CloudFormation table resources from the same models through ``table_resources()``, so the key
schema of a table is written once, in ``chalicelib/store``.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from . import aws
from .settings import Settings, environment

if TYPE_CHECKING:
    from pynamodb.models import Model

log = logging.getLogger("wisp.bootstrap")

TTL_ATTRIBUTE = "expires_at_epoch"  # tables with a model attribute of this name get DynamoDB TTL


def _all_models() -> list[type[Model]]:
    from .store import ALL_MODELS

    return ALL_MODELS


def ensure_tables() -> None:
    for model in _all_models():
        if not model.exists():
            model.create_table(wait=True, billing_mode="PAY_PER_REQUEST")
            log.info("created table %s", model.Meta.table_name)
        if TTL_ATTRIBUTE in model.get_attributes():
            aws.client("dynamodb").update_time_to_live(
                TableName=model.Meta.table_name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
            )


def ensure_bucket(client_url: str | None = None) -> None:
    """The audio/transcript bucket: private, encrypted at rest, incomplete uploads cleaned up, and
    (``client_url``) reachable from the web app's origin for direct uploads, as the deploy
    template's CORS rule makes it: PUT parts, read their ``ETag``."""
    env = environment()
    s3 = aws.client("s3")
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if env.bucket not in existing:
        kwargs: dict[str, Any] = {"Bucket": env.bucket}
        if env.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": env.region}
        s3.create_bucket(**kwargs)
        log.info("created bucket %s", env.bucket)
    s3.put_public_access_block(
        Bucket=env.bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True,
            "BlockPublicPolicy": True, "RestrictPublicBuckets": True,
        },
    )
    rule: dict[str, Any] = (
        {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": env.kms_key_id} if env.kms_key_id else {"SSEAlgorithm": "AES256"}
    )
    s3.put_bucket_encryption(
        Bucket=env.bucket,
        ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": rule}]},
    )
    s3.put_bucket_lifecycle_configuration(
        Bucket=env.bucket,
        LifecycleConfiguration={"Rules": [{
            "ID": "abort-incomplete-multipart-uploads",
            "Status": "Enabled",
            "Filter": {"Prefix": ""},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 2},
        }]},
    )
    if client_url:
        from urllib.parse import urlsplit

        origin = urlsplit(client_url)
        s3.put_bucket_cors(Bucket=env.bucket, CORSConfiguration={"CORSRules": [{
            "ID": "web-origin", "AllowedOrigins": [f"{origin.scheme}://{origin.netloc}"],
            "AllowedMethods": ["GET", "PUT", "POST", "HEAD"], "AllowedHeaders": ["*"],
            "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 3000,
        }]})


def ensure_sender_identity(settings: Settings) -> None:
    """Register the sender address with SES (moto accepts it at once; real SES mails a link)."""
    aws.client("ses").verify_email_identity(EmailAddress=settings.mail.sender_email)


def ensure_all(settings: Settings) -> None:
    ensure_tables()
    ensure_bucket(settings.client_url)
    ensure_sender_identity(settings)


def table_resources() -> dict[str, dict[str, Any]]:
    """CloudFormation ``AWS::DynamoDB::Table`` resources for every model (deploy path)."""
    resources: dict[str, dict[str, Any]] = {}
    for model in _all_models():
        schema = model._get_schema()
        logical = "".join(part.capitalize() for part in model.Meta.table_name.split("-")[1:]) + "Table"
        props: dict[str, Any] = {
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [
                {"AttributeName": a["AttributeName"], "AttributeType": a["AttributeType"]}
                for a in schema["attribute_definitions"]
            ],
            "KeySchema": _ordered_keys(schema["key_schema"]),
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "SSESpecification": {"SSEEnabled": True},
        }
        gsis = schema.get("global_secondary_indexes") or []
        if gsis:
            props["GlobalSecondaryIndexes"] = [
                {
                    "IndexName": g["index_name"],
                    "KeySchema": _ordered_keys(g["key_schema"]),
                    "Projection": {"ProjectionType": g["projection"]["ProjectionType"],
                                   **({"NonKeyAttributes": g["projection"]["NonKeyAttributes"]}
                                      if g["projection"].get("NonKeyAttributes") else {})},
                }
                for g in gsis
            ]
        if TTL_ATTRIBUTE in model.get_attributes():
            props["TimeToLiveSpecification"] = {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}
        resources[logical] = {"Type": "AWS::DynamoDB::Table", "Properties": props, "_suffix": model.Meta.table_name.split("-", 1)[1]}
    return resources


def _ordered_keys(keys: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    # CloudFormation wants HASH before RANGE
    return [{"AttributeName": k["AttributeName"], "KeyType": k["KeyType"]}
            for k in sorted(keys, key=lambda k: k["KeyType"] != "HASH")]
