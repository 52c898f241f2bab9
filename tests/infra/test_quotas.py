"""The built template against the AWS service quotas it touches (default values, 2025).

Offline, so where a value is only known after deployment (an ARN, a function name) the check
assumes a generous length for it (RESOLVED). Where the quota is adjustable, the default is used: a
deploy must work in a fresh account.
"""
from __future__ import annotations

import json
import re

from infra import deploy

# CloudFormation (Understand CloudFormation quotas)
TEMPLATE_BODY_IN_REQUEST = 51_200  # bytes, TemplateBody in CreateStack/UpdateStack
TEMPLATE_BODY_IN_S3 = 1_048_576  # bytes, TemplateURL (aws cloudformation deploy --s3-bucket)
RESOURCES = 500
OUTPUTS = 200
PARAMETERS = 200
MAPPINGS = 200
NAME_LENGTH = 255  # logical ids, parameter and output names
DESCRIPTION_BYTES = 1_024
# Application Auto Scaling: step adjustments per step scaling policy
STEP_ADJUSTMENTS = 20
# CloudWatch: actions per alarm state, AlarmDescription length
ALARM_ACTIONS = 5
ALARM_DESCRIPTION = 1_024
# Lambda: all environment variables of a function together
LAMBDA_ENVIRONMENT_BYTES = 4_096
# IAM: inline policies of one role together (whitespace not counted)
ROLE_INLINE_POLICY_CHARS = 10_240
# EC2: rules per security group and direction; launch template user data before base64
SECURITY_GROUP_RULES = 60
USER_DATA_BYTES = 16_384
# EventBridge: targets per rule, event pattern length
RULE_TARGETS = 5
EVENT_PATTERN_CHARS = 2_048
# CloudFront: cache behaviours per distribution
CACHE_BEHAVIORS = 25

RESOLVED = 128  # assumed length of whatever an intrinsic function resolves to


def resolved_length(node: object) -> int:
    """Length of a value once CloudFormation has resolved it (intrinsics counted as RESOLVED)."""
    if isinstance(node, dict):
        if "Fn::Sub" in node:
            text = node["Fn::Sub"] if isinstance(node["Fn::Sub"], str) else node["Fn::Sub"][0]
            return len(re.sub(r"\$\{[^}]+\}", "", text)) + RESOLVED * len(re.findall(r"\$\{[^}]+\}", text))
        if any(k in node for k in ("Ref", "Fn::GetAtt", "Fn::If", "Fn::Select", "Fn::Join")):
            return RESOLVED
        return sum(len(json.dumps(k)) + resolved_length(v) + 2 for k, v in node.items())
    if isinstance(node, list):
        return sum(resolved_length(v) + 1 for v in node) + 2
    return len(json.dumps(node)) if not isinstance(node, str) else len(node) + 2


def expanded_resource_count(sam: dict) -> int:
    """Resources after the SAM transform, every condition true (the worst case)."""
    count = 0
    for res in sam["Resources"].values():
        kind = res["Type"]
        if kind == "AWS::Serverless::Function":
            props = res["Properties"]
            count += 1 + (0 if "Role" in props else 1)
            count += 2 * len(props.get("Events", {}))  # a schedule: an EventBridge rule and a permission
        elif kind == "AWS::Serverless::Api":
            count += 3  # RestApi, Deployment, Stage
        else:
            count += 1
    return count


def test_template_size_fits_the_upload_deploy_py_uses(sam, built):
    # deploy.py passes --s3-bucket to `cloudformation deploy`, so the template goes by S3 URL
    deploy_command = deploy.commands(built, artifact_bucket=None)[1]
    assert "--s3-bucket" in deploy_command
    size = len((built / "package" / "sam.json").read_bytes())
    assert size <= TEMPLATE_BODY_IN_S3, size
    assert size > TEMPLATE_BODY_IN_REQUEST  # why the S3 upload is not optional


def test_counts_and_names(sam):
    assert expanded_resource_count(sam) <= RESOURCES
    assert len(sam.get("Outputs", {})) <= OUTPUTS
    assert len(sam.get("Parameters", {})) <= PARAMETERS
    assert len(sam.get("Mappings", {})) <= MAPPINGS
    for section in ("Resources", "Outputs", "Parameters", "Conditions"):
        assert all(len(name) <= NAME_LENGTH for name in sam.get(section, {})), section
    assert len(sam["Description"].encode()) <= DESCRIPTION_BYTES
    for name, param in sam["Parameters"].items():
        assert len(param.get("Description", "").encode()) <= 4_000, name


def test_no_step_policy_exceeds_its_adjustments(sam):
    for name, res in sam["Resources"].items():
        steps = res.get("Properties", {}).get("StepScalingPolicyConfiguration", {}).get("StepAdjustments", [])
        assert len(steps) <= STEP_ADJUSTMENTS, name


def test_alarms(sam):
    alarms = {k: v["Properties"] for k, v in sam["Resources"].items() if v["Type"] == "AWS::CloudWatch::Alarm"}
    assert alarms
    for name, alarm in alarms.items():
        for key in ("AlarmActions", "OKActions", "InsufficientDataActions"):
            assert len(alarm.get(key, [])) <= ALARM_ACTIONS, name
        assert resolved_length(alarm.get("AlarmDescription", "")) <= ALARM_DESCRIPTION, name


def test_function_environments_fit(sam):
    for name, res in sam["Resources"].items():
        if res["Type"] == "AWS::Serverless::Function":
            variables = res["Properties"]["Environment"]["Variables"]
            size = sum(len(k) + resolved_length(v) for k, v in variables.items())
            assert size <= LAMBDA_ENVIRONMENT_BYTES, (name, size)


def test_role_inline_policies_fit(sam):
    res = sam["Resources"]
    per_role: dict[str, int] = {}
    for name, resource in res.items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            per_role[name] = per_role.get(name, 0) + resolved_length(props.get("Policies", []))
        elif resource["Type"] == "AWS::IAM::Policy":
            for role in props["Roles"]:
                per_role[role["Ref"]] = per_role.get(role["Ref"], 0) + resolved_length(props["PolicyDocument"])
    for role, size in per_role.items():
        assert size <= ROLE_INLINE_POLICY_CHARS, (role, size)


def test_network_and_instances(sam):
    res = sam["Resources"]
    for name, resource in res.items():
        if resource["Type"] == "AWS::EC2::SecurityGroup":
            props = resource["Properties"]
            assert len(props.get("SecurityGroupEgress", [])) <= SECURITY_GROUP_RULES, name
            assert len(props.get("SecurityGroupIngress", [])) <= SECURITY_GROUP_RULES, name
    user_data = res["RunnerLaunchTemplate"]["Properties"]["LaunchTemplateData"]["UserData"]["Fn::Base64"]
    text, variables = user_data["Fn::Sub"]
    worst = len(text) + sum(resolved_length(v) for v in variables.values())
    warm_up = variables["WarmUp"]["Fn::If"][1]["Fn::Sub"]
    worst += len(warm_up)
    assert worst <= USER_DATA_BYTES  # the limit applies before base64


def test_rules_and_distribution(sam):
    res = sam["Resources"]
    for name, resource in res.items():
        if resource["Type"] == "AWS::Events::Rule":
            assert len(resource["Properties"]["Targets"]) <= RULE_TARGETS, name
            assert resolved_length(resource["Properties"]["EventPattern"]) <= EVENT_PATTERN_CHARS, name
    behaviours = res["FrontendDistribution"]["Properties"]["DistributionConfig"]["CacheBehaviors"]
    assert len(behaviours) <= CACHE_BEHAVIORS
