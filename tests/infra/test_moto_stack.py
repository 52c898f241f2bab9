"""Smoke test: the stateful part of the built stack, created in moto's CloudFormation.

moto cannot run the SAM transform, ECS capacity providers or auto-scaling, so the stack here is
the subset it implements (tables, buckets, KMS key, ECR, cluster, log groups, the alert topic and
EventBridge rules, security groups, the execution role). Left out: the functions and
API, CloudFront, SES, alarms, secrets, the launch template, Auto Scaling group, capacity provider,
ECS service and task definition, VPC endpoints and the IAM policies attached to Chalice's roles
(moto lacks them, or they refer to something that is left out). Secrets Manager
secrets are not implemented by moto's CloudFormation; they are created from the template's own
properties with the matching API calls, which also checks that the generator settings yield a key
chalicelib/settings.py accepts.
"""
from __future__ import annotations

import json
import re

import boto3

SUPPORTED = {"AWS::DynamoDB::Table", "AWS::S3::Bucket", "AWS::KMS::Key", "AWS::KMS::Alias",
             "AWS::ECR::Repository", "AWS::ECS::Cluster", "AWS::Logs::LogGroup",
             # alerts and the runners' network and roles
             "AWS::SNS::Topic", "AWS::Events::Rule", "AWS::EC2::SecurityGroup", "AWS::IAM::Role",
             "AWS::IAM::InstanceProfile"}
# moto 5 passes a policy list entry that resolves to AWS::NoValue on as None, and fails on it
MOTO_CANNOT = {"RunnerInstanceRole"}
PARAMETERS = {"StageName": "smoke", "ClientUrl": "https://wisp.example.edu/#", "SenderEmail": "wisp@example.edu",
              "LogRetentionDays": "30"}
STACK = "wisp-smoke"


def _subset(merge: dict, values: dict[str, str]) -> dict:
    """The SUPPORTED resources (minus what refers outside them), their conditions and outputs.

    Everything else (SAM functions, IAM, CloudFront distribution and origin access control, bucket
    policies, ECS services, scaling) is left out: moto cannot create it, or not faithfully.
    """
    params = merge["Parameters"]
    conditions = merge.get("Conditions", {})
    resources = {name: res for name, res in merge["Resources"].items()
                 if res.get("Type") in SUPPORTED and name not in MOTO_CANNOT}
    # drop what refers to resources outside the subset (e.g. the log groups of Chalice's functions)
    while True:
        keep = {name: res for name, res in resources.items()
                if all(ref in resources or ref in params or ref.startswith("AWS::")
                       for ref in _references(res))}
        if keep.keys() == resources.keys():
            break
        resources = keep
    outputs = {name: out for name, out in merge["Outputs"].items()
               if all(ref in resources or ref in params or ref.startswith("AWS::") for ref in _references(out))}
    used = _conditions_used({**resources, **outputs}, conditions)
    text = json.dumps([resources, {name: conditions[name] for name in used}])
    # parameters the subset uses: the ones PARAMETERS sets, and switches that have a default
    kept_params = {name: p for name, p in params.items()
                   if re.search(rf'"{name}"|\$\{{{name}\}}', text) and (name in values or "Default" in p)}
    template = {"AWSTemplateFormatVersion": "2010-09-09", "Parameters": kept_params,
                "Resources": resources, "Outputs": outputs}
    if used:
        template["Conditions"] = {name: conditions[name] for name in used}
    return template


def _conditions_used(parts: dict, conditions: dict) -> set[str]:
    """Conditions named by the resources/outputs (Condition key, Fn::If) and, in turn, by those."""
    def named(node: object) -> set[str]:
        text = json.dumps(node)
        return set(re.findall(r'"Condition": "(\w+)"', text)) | set(re.findall(r'"Fn::If": \["(\w+)"', text))

    used: set[str] = set()
    todo = named(parts)
    while todo:
        name = todo.pop()
        if name not in used:
            used.add(name)
            todo |= named(conditions[name])
    return used


def _references(resource: dict) -> set[str]:
    text = json.dumps(resource)
    refs = set(re.findall(r'"Ref": "([\w:]+)"', text)) | set(re.findall(r'"Fn::GetAtt": \["(\w+)"', text))
    for template in re.findall(r'"Fn::Sub": "([^"]*)"', text):
        refs |= {r.split(".")[0] for r in re.findall(r"\$\{([\w:.]+)\}", template)}
    return refs


def _create_secret(name: str, props: dict) -> str:
    sm = boto3.client("secretsmanager", region_name="eu-central-1")
    secret_name = props["Name"]["Fn::Sub"].replace("${AWS::StackName}", STACK)
    if "GenerateSecretString" in props:
        gen = props["GenerateSecretString"]
        value = sm.get_random_password(
            PasswordLength=gen["PasswordLength"], ExcludeCharacters=gen.get("ExcludeCharacters", ""),
            ExcludeUppercase=gen.get("ExcludeUppercase", False), ExcludePunctuation=gen.get("ExcludePunctuation", False),
            IncludeSpace=gen.get("IncludeSpace", False),
        )["RandomPassword"]
    else:
        value = props["SecretString"]
    return sm.create_secret(Name=secret_name, SecretString=value)["ARN"]


def test_stack_creates_tables_bucket_and_secrets(merge):
    from chalicelib.store import ALL_MODELS

    vpc = boto3.client("ec2", region_name="eu-central-1").create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    values = {**PARAMETERS, "RunnerVpcId": vpc}
    template = _subset(merge, values)
    cf = boto3.client("cloudformation", region_name="eu-central-1")
    cf.create_stack(StackName=STACK, TemplateBody=json.dumps(template),
                    Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()
                                if k in template["Parameters"]])
    stack = cf.describe_stacks(StackName=STACK)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}

    # GIVEN the stack, THEN every model's table exists under "<stack>-<name>" with the model's keys
    ddb = boto3.client("dynamodb", region_name="eu-central-1")
    names = set(ddb.list_tables()["TableNames"])
    for model in ALL_MODELS:
        name = f"{STACK}-{model.Meta.table_name[len('wisp-test-'):]}"
        assert name in names
        keys = ddb.describe_table(TableName=name)["Table"]["KeySchema"]
        assert {"AttributeName": model._hash_keyname, "KeyType": "HASH"} in keys
    assert outputs["UsersTableName"] == f"{STACK}-users"

    # the bucket, encrypted with the stack's own key
    s3 = boto3.client("s3", region_name="eu-central-1")
    bucket = outputs["BucketName"]
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == outputs["DataKeyArn"]

    # the frontend bucket (EnableFrontend defaults to true): SSE-S3 (moto's CloudFormation ignores the public
    # access block: test_template checks it); CloudFront is not in the subset
    frontend = outputs["FrontendBucketName"]
    rule = s3.get_bucket_encryption(Bucket=frontend)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert "FrontendDistribution" not in template["Resources"]

    # the runner repository and the cluster
    assert outputs["RunnerRepositoryUri"].endswith(f"/{STACK}-runner")
    ecs = boto3.client("ecs", region_name="eu-central-1")
    assert ecs.describe_clusters(clusters=[outputs["ClusterName"]])["clusters"][0]["status"] == "ACTIVE"
    assert outputs["ClusterName"] == f"{STACK}-runners"  # the name the functions are given

    # the alert topic, the rule that reports failing runner tasks to it, the runners' network and roles
    topics = {t["TopicArn"] for t in boto3.client("sns", region_name="eu-central-1").list_topics()["Topics"]}
    assert outputs["AlertTopicArn"] in topics
    events = boto3.client("events", region_name="eu-central-1")
    rules = {r["Name"]: r for r in events.list_rules()["Rules"]}
    stopped = next(r for name, r in rules.items() if "RunnerTaskStoppedRule" in name)
    assert json.loads(stopped["EventPattern"])["detail"]["lastStatus"] == ["STOPPED"]
    ec2 = boto3.client("ec2", region_name="eu-central-1")
    groups = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["SecurityGroups"]
    # (moto's CloudFormation keeps the default egress rule; test_hardening checks the template's)
    assert any("runner instances" in g["Description"] for g in groups)
    roles = {r["RoleName"] for r in boto3.client("iam", region_name="eu-central-1").list_roles()["Roles"]}
    assert any("RunnerExecutionRole" in r for r in roles)  # the task role needs the secrets (not in moto here)

    # the secrets, made from the template's properties: the secret key is one settings.py accepts
    sm = boto3.client("secretsmanager", region_name="eu-central-1")
    key_arn = _create_secret("SecretKeySecret", merge["Resources"]["SecretKeySecret"]["Properties"])
    token_arn = _create_secret("RunnerTokenSecret", merge["Resources"]["RunnerTokenSecret"]["Properties"])
    key = sm.get_secret_value(SecretId=key_arn)["SecretString"]
    assert re.fullmatch(r"[0-9a-f]{64}", key)
    assert json.loads(sm.get_secret_value(SecretId=token_arn)["SecretString"])["token"]

    from chalicelib import settings

    settings._secret_from_secrets_manager.cache_clear()
    assert settings._secret_from_secrets_manager(key_arn) == key
    settings._secret_from_secrets_manager.cache_clear()
