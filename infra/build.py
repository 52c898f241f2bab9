#!/usr/bin/env python3
"""Build one stage's CloudFormation stack: infra/template.yaml + generated parts + chalice package.

    python infra/build.py --stage prod [--stage-file infra/stages/prod.yml] [--out infra/build]
                          [--config my-wisp-config.yml] [--no-deps]

Steps (all offline):

1. Read the stage file (infra/stages/<stage>.yml): the values a university IT department sets.
2. Write the operator configuration (chalicelib/settings.py format) from the stage file, or take the
   operator's own file (``--config``, ``config_file:`` in the stage file, or ``WISP_CONFIG`` in the
   environment), validate it, and package it with the Lambda code as /var/task/wisp-config.yml.
3. Stage a copy of the Chalice project in <out>/app (so nothing is written into the source tree).
4. ``chalice package`` once to learn which functions (API, schedules) and roles Chalice generates.
5. Generate <out>/merge.json: the base template, one DynamoDB table per model in
   ``chalicelib.store.ALL_MODELS`` (through ``bootstrap.table_resources()``), the environment, VPC
   settings and log group of every function, the backend policy's table ARNs and role list, the
   runner-scaling policy's roles (API and sweeper), the API's throttling and reserved concurrency.
6. ``chalice package --merge-template`` → <out>/package/sam.json + deployment.zip.
7. Compile the bundle's Python files to bytecode inside deployment.zip (Lambda's /var/task is
   read-only, so without it every cold start compiles every module it imports).
8. Write <out>/parameters.json, the stack parameters for infra/deploy.py.

A stage needs no entry in .chalice/config.json: the staged copy gets one (with a policy file that
lets the functions write their own log streams) when the source tree has none.

``--no-deps`` packages without requirements.txt (no network needed; for CI checks only).
"""
from __future__ import annotations

import argparse
import compileall
import json
import os
import py_compile
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra"
BASE_TEMPLATE = INFRA / "template.yaml"
DEFAULT_OUT = INFRA / "build"

API_STAGE = "api"  # .chalice/config.json api_gateway_stage; the template's URLs assume it
CONFIG_IN_PACKAGE = "wisp-config.yml"  # vendor/ files land in /var/task
LAMBDA_CONFIG_PATH = f"/var/task/{CONFIG_IN_PACKAGE}"
BUILD_TABLE_PREFIX = "wisp"  # only for logical ids; deployed tables are named "<stack name>-<table>"
LAMBDA_PYTHON = (3, 11)  # the functions' runtime (.chalice/config.json has no override): the bytecode's version
API_FUNCTION = "APIHandler"
# Functions whose roles may set the runner service's desired count (WispRunnerScalingPolicy).
SCALING_FUNCTIONS = (API_FUNCTION, "SweepRunners")
ADMIN_PASSWORD_ENV = "WISP_ADMIN_PASSWORD"

# Lambda environment: chalicelib/settings.py and services/queue_metrics.py read these. No secret
# value is ever here (lambda:GetFunctionConfiguration shows them): secrets are named by ARN.
FUNCTION_ENVIRONMENT: dict[str, Any] = {
    "WISP_SECRET_KEY_ARN": {"Ref": "SecretKeySecret"},
    "WISP_TABLE_PREFIX": {"Ref": "AWS::StackName"},
    "WISP_BUCKET": {"Ref": "Bucket"},
    "WISP_KMS_KEY_ID": {"Fn::GetAtt": ["DataKey", "Arn"]},
    # seals the identity providers' refresh tokens (chalicelib/sealing.py)
    "WISP_TOKEN_KMS_KEY_ID": {"Fn::GetAtt": ["DataKey", "Arn"]},
    "WISP_STAGE": {"Ref": "StageName"},
    "WISP_MAX_RUNNERS": {"Ref": "MaxRunners"},
    "WISP_JOBS_PER_RUNNER": {"Ref": "JobsPerRunner"},
    "WISP_IDLE_MINUTES": {"Ref": "IdleMinutes"},
    "WISP_GPU_HOURS_PER_DAY": {"Ref": "RunnerDailyGpuHourBudget"},
    # the ECS service whose desired count the backend sets (names fixed in template.yaml)
    "WISP_RUNNER_CLUSTER": {"Fn::Sub": "${AWS::StackName}-runners"},
    "WISP_RUNNER_SERVICE": {"Fn::Sub": "${AWS::StackName}-runner"},
    "WISP_SES_CONFIGURATION_SET": {"Ref": "MailConfigurationSet"},
    # referenced with !ENV by the generated operator configuration
    "WISP_CLIENT_URL": {"Ref": "ClientUrl"},
    "WISP_SENDER_EMAIL": {"Ref": "SenderEmail"},
    # ${WISP_ADMIN_PASSWORD} in the configuration: the value is read from this secret
    f"{ADMIN_PASSWORD_ENV}_SECRET_ARN": {"Ref": "AdminPasswordSecret"},
}

# checkov findings on the generated resources, each with the reason it does not apply.
GENERATED_CHECKOV_SKIPS: dict[str, list[tuple[str, str]]] = {
    "function": [
        ("CKV_AWS_116", "API calls are synchronous; a failed schedule run is retried by the next one and alarms (SweeperErrorsAlarm)"),
        ("CKV_AWS_173", "the environment holds names and ARNs only, never a secret; Lambda encrypts it at rest"),
    ],
    "scheduled": [
        ("CKV_AWS_115", "one invocation per schedule tick; reserved concurrency would take from the account's unreserved pool"),
    ],
    "api": [
        ("CKV_AWS_73", "X-Ray is not used; the functions log every error"),
        ("CKV_AWS_76", "access logs need the account-wide API Gateway CloudWatch role, which a stage must not own"),
        ("CKV_AWS_120", "responses are per user and never cached"),
    ],
    "table": [
        ("CKV_AWS_119", "encrypted at rest with the AWS managed key; a customer key adds no control over who reads the table"),
    ],
}

# Stage-file key → stack parameter
STAGE_PARAMETERS: dict[str, str] = {
    "client_url": "ClientUrl",
    "sender_email": "SenderEmail",
    "mail_identity": "MailIdentity",
    "alert_email": "AlertEmail",
    "queued_job_alarm_seconds": "QueuedJobAlarmSeconds",
    "gpu_hours_per_day": "RunnerDailyGpuHourBudget",
    "warm_pool_size": "RunnerWarmPoolSize",
    "preload_models": "RunnerPreloadModels",
    "runner_vpc_endpoints": "RunnerVpcEndpoints",
    "runner_route_table_ids": "RunnerRouteTableIds",
    "api_throttle_rate": "ApiThrottleRateLimit",
    "api_throttle_burst": "ApiThrottleBurstLimit",
    "api_reserved_concurrency": "ApiReservedConcurrency",
    "gpu_instance_type": "GpuInstanceType",
    "max_runners": "MaxRunners",
    "jobs_per_runner": "JobsPerRunner",
    "idle_minutes": "IdleMinutes",
    "use_spot": "UseSpot",
    "runner_image_tag": "RunnerImageTag",
    "runner_vpc_id": "RunnerVpcId",
    "runner_subnet_ids": "RunnerSubnetIds",
    "log_retention_days": "LogRetentionDays",
    "lambda_subnet_ids": "LambdaSubnetIds",
    "lambda_security_group_ids": "LambdaSecurityGroupIds",
    "provider_secret_arns": "ProviderSecretArns",
    "frontend": "EnableFrontend",
    "frontend_domain_name": "FrontendDomainName",
    "frontend_certificate_arn": "FrontendCertificateArn",
    "frontend_price_class": "FrontendPriceClass",
}
REQUIRED_STAGE_KEYS = ("client_url", "sender_email", "runner_vpc_id", "runner_subnet_ids")


class BuildError(Exception):
    """The stage file, the configuration or a build step is wrong; the message says which."""


# --------------------------------------------------------------------------------------------
# YAML with CloudFormation short tags
# --------------------------------------------------------------------------------------------


def load_cfn_yaml(text: str) -> dict[str, Any]:
    """Parse a CloudFormation YAML template into the JSON form (``!Ref X`` → ``{"Ref": "X"}``)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def intrinsic(loader: Any, tag_suffix: str, node: Any) -> dict[str, Any]:
        name = tag_suffix if tag_suffix in ("Ref", "Condition") else f"Fn::{tag_suffix}"
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if tag_suffix == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {name: value}

    Loader.add_multi_constructor("!", intrinsic)
    return yaml.load(text, Loader=Loader)


# --------------------------------------------------------------------------------------------
# Stage file and operator configuration
# --------------------------------------------------------------------------------------------


def load_stage_file(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise BuildError(f"cannot read stage file {path}: {exc.strerror} (copy infra/stages/example.yml)") from exc
    if not isinstance(data, dict):
        raise BuildError(f"{path}: the top level must be a mapping")
    missing = [key for key in REQUIRED_STAGE_KEYS if not data.get(key)]
    if missing:
        raise BuildError(f"{path}: missing {', '.join(missing)}")
    check_frontend_keys(path, data)
    return data


def check_frontend_keys(path: Path, data: dict[str, Any]) -> None:
    """A custom frontend domain needs its certificate, and client_url must name that host."""
    if data.get("frontend") is False or not data.get("frontend_domain_name"):
        return
    domain = str(data["frontend_domain_name"]).lower()
    if not data.get("frontend_certificate_arn"):
        raise BuildError(f"{path}: frontend_domain_name needs frontend_certificate_arn (ACM, us-east-1)")
    host = str(data["client_url"]).split("//", 1)[-1].split("/", 1)[0].lower()
    if host != domain:
        raise BuildError(f"{path}: client_url must be https://{domain}/# when frontend_domain_name is set")


def stack_parameters(stage: str, stage_file: dict[str, Any]) -> dict[str, str]:
    """Stack parameters (CloudFormation strings) from the stage file (never the admin password)."""
    params = {"StageName": stage}
    for key, name in STAGE_PARAMETERS.items():
        if key not in stage_file or stage_file[key] is None:
            continue
        value = stage_file[key]
        if isinstance(value, bool):
            params[name] = "true" if value else "false"
        elif isinstance(value, (list, tuple)):
            params[name] = ",".join(str(v) for v in value)
        else:
            params[name] = str(value)
    return params


class _EnvRef(str):
    """A scalar written as ``!ENV ${NAME}`` in the generated configuration."""


def generated_config(stage_file: dict[str, Any]) -> str:
    """The operator configuration for a stage, with deploy-time values taken from the Lambda env."""
    import yaml

    local: dict[str, Any] = {
        "mode": stage_file.get("local_account_mode", "enabled"),
        "allowed_email_domains": list(stage_file.get("allowed_email_domains") or []),
        "allow_creation_of_api_tokens": bool(stage_file.get("allow_creation_of_api_tokens", True)),
    }
    if stage_file.get("admin_email"):
        local["user_provisioning"] = {
            1: {"email": stage_file["admin_email"], "password": _EnvRef("${WISP_ADMIN_PASSWORD}"), "is_admin": True}
        }
    config: dict[str, Any] = {
        "client_url": _EnvRef("${WISP_CLIENT_URL}"),
        "security": {"local_account": local},
        "mail": {"sender_email": _EnvRef("${WISP_SENDER_EMAIL}")},
        "cleanup": {
            "finished_job_retention_in_days": stage_file.get("finished_job_retention_in_days"),
            "user_retention_in_days": stage_file.get("user_retention_in_days"),
        },
    }
    if stage_file.get("imprint"):
        config["imprint"] = stage_file["imprint"]

    class Dumper(yaml.SafeDumper):
        pass

    Dumper.add_representer(_EnvRef, lambda dumper, value: dumper.represent_scalar("!ENV", str(value)))
    header = "# Generated by infra/build.py from the stage file; edit the stage file, not this.\n"
    return header + yaml.dump(config, Dumper=Dumper, sort_keys=False, allow_unicode=True)


def validate_config(text: str, source: str, stage_file: dict[str, Any]) -> None:
    """Parse the configuration as the Lambda will, with the deploy-time values filled in."""
    from chalicelib.settings import ConfigError, parse_settings

    placeholders = {
        "WISP_CLIENT_URL": str(stage_file.get("client_url", "https://wisp.invalid/#")),
        "WISP_SENDER_EMAIL": str(stage_file.get("sender_email", "wisp@wisp.invalid")),
        "WISP_ADMIN_PASSWORD": "x" * 16,  # the real one is in the AdminPasswordSecret secret
        "WISP_SECRET_KEY": "0" * 64,  # the real one comes from Secrets Manager
    }
    saved = {name: os.environ.get(name) for name in placeholders}
    os.environ.update({k: v for k, v in placeholders.items() if k not in os.environ or k == "WISP_SECRET_KEY"})
    try:
        parse_settings(text, source)
    except ConfigError as exc:
        raise BuildError(str(exc)) from exc
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# --------------------------------------------------------------------------------------------
# Chalice project copy and packaging
# --------------------------------------------------------------------------------------------


def stage_project(app_dir: Path, config_text: str, *, stage: str, with_deps: bool) -> None:
    """Copy what Chalice packages into ``app_dir``, plus the configuration as vendor/."""
    if app_dir.exists():
        shutil.rmtree(app_dir)
    app_dir.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "deployments", "venv")
    shutil.copy2(ROOT / "app.py", app_dir / "app.py")
    shutil.copytree(ROOT / "chalicelib", app_dir / "chalicelib", ignore=ignore)
    shutil.copytree(ROOT / ".chalice", app_dir / ".chalice", ignore=ignore)
    if (ROOT / "vendor").is_dir():
        shutil.copytree(ROOT / "vendor", app_dir / "vendor", ignore=ignore)
    requirements = ROOT / "requirements.txt"
    (app_dir / "requirements.txt").write_text(
        requirements.read_text(encoding="utf-8") if with_deps and requirements.exists() else "", encoding="utf-8"
    )
    (app_dir / "vendor").mkdir(exist_ok=True)
    (app_dir / "vendor" / CONFIG_IN_PACKAGE).write_text(config_text, encoding="utf-8")
    add_chalice_stage(app_dir / ".chalice", stage)


def add_chalice_stage(chalice_dir: Path, stage: str) -> None:
    """Give the staged copy a Chalice stage ``stage`` when the source tree has none.

    Its policy lets each function write its own log streams, as policy-prod.json does; the data
    permissions are the template's WispBackendPolicy.
    """
    config_path = chalice_dir / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    stages = config.setdefault("stages", {})
    if stage in stages:
        return
    policy_name = f"policy-{stage}.json"
    stages[stage] = {"iam_policy_file": policy_name}
    config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    policy = {"Version": "2012-10-17", "Statement": [{
        "Sid": "OwnLogStreams", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": f"arn:aws:logs:*:*:log-group:/aws/lambda/{stack_name(stage)}-*:*",
    }]}
    (chalice_dir / policy_name).write_text(json.dumps(policy, indent=2) + "\n", encoding="utf-8")


def chalice_env(region: str, config_path: Path) -> dict[str, str]:
    """Environment for ``chalice package``: it imports app.py, which must not touch AWS."""
    env = dict(os.environ)
    env.update(
        AWS_DEFAULT_REGION=region,
        AWS_REGION=region,
        WISP_TABLE_PREFIX=BUILD_TABLE_PREFIX,
        WISP_CONFIG=str(config_path),
        WISP_BUCKET="wisp-build",
    )
    env.pop("WISP_AWS_ENDPOINT_URL", None)
    return env


def run_chalice(app_dir: Path, stage: str, out: Path, env: dict[str, str], merge: Path | None = None) -> dict[str, Any]:
    if out.exists():
        shutil.rmtree(out)
    command = [_chalice_executable(), "--project-dir", str(app_dir), "package", "--stage", stage]
    if merge is not None:
        command += ["--merge-template", str(merge)]
    command.append(str(out))
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise BuildError(f"chalice package failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return json.loads((out / "sam.json").read_text(encoding="utf-8"))


def _chalice_executable() -> str:
    local = Path(sys.executable).parent / "chalice"
    return str(local) if local.exists() else (shutil.which("chalice") or "chalice")


# --------------------------------------------------------------------------------------------
# Merge template
# --------------------------------------------------------------------------------------------


def chalice_functions(sam: dict[str, Any]) -> dict[str, str | None]:
    """Function logical id → logical id of its Chalice-generated role (None for a pre-made role)."""
    found: dict[str, str | None] = {}
    for name, resource in sam["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        role = resource["Properties"].get("Role")
        found[name] = role["Fn::GetAtt"][0] if isinstance(role, dict) and "Fn::GetAtt" in role else None
    return found


def table_resources() -> dict[str, dict[str, Any]]:
    """The DynamoDB tables of ``chalicelib.store.ALL_MODELS`` as stack resources."""
    from chalicelib import bootstrap

    tables = {}
    for logical, resource in bootstrap.table_resources().items():
        suffix = resource.pop("_suffix")
        resource["Properties"]["TableName"] = {"Fn::Sub": f"${{AWS::StackName}}-{suffix}"}
        resource["DeletionPolicy"] = "Retain"
        resource["UpdateReplacePolicy"] = "Retain"
        tables[logical] = resource
    return tables


def merge_template(base: dict[str, Any], functions: dict[str, str | None],
                   tables: dict[str, dict[str, Any]]) -> dict[str, Any]:
    template = json.loads(json.dumps(base))  # deep copy
    resources = template["Resources"]
    outputs = template.setdefault("Outputs", {})

    clash = set(tables) & set(resources)
    if clash:
        raise BuildError(f"table logical ids clash with template resources: {sorted(clash)}")
    resources.update(tables)
    for logical in tables:
        outputs[f"{logical}Name"] = {"Value": {"Ref": logical}}

    policy = resources["WispBackendPolicy"]["Properties"]
    policy["Roles"] = [{"Ref": role} for role in sorted({role for role in functions.values() if role})]
    if not policy["Roles"]:
        raise BuildError("chalice generated no IAM roles; set autogen_policy false in .chalice/config.json")
    table_statement = next(s for s in policy["PolicyDocument"]["Statement"] if s.get("Sid") == "Tables")
    table_statement["Resource"] = [
        arn for logical in sorted(tables)
        for arn in ({"Fn::GetAtt": [logical, "Arn"]}, {"Fn::Sub": f"${{{logical}.Arn}}/index/*"})
    ]

    missing = [name for name in SCALING_FUNCTIONS if not functions.get(name)]
    if missing:
        raise BuildError(f"chalice package has no function (with its own role) named {', '.join(missing)}")
    scaling = resources["WispRunnerScalingPolicy"]["Properties"]
    scaling["Roles"] = [{"Ref": functions[name]} for name in SCALING_FUNCTIONS]

    for function in sorted(functions):
        properties: dict[str, Any] = {
            "Environment": {"Variables": dict(FUNCTION_ENVIRONMENT)},
            "VpcConfig": {
                "Fn::If": [
                    "LambdaInVpc",
                    {"SubnetIds": {"Ref": "LambdaSubnetIds"}, "SecurityGroupIds": {"Ref": "LambdaSecurityGroupIds"}},
                    {"Ref": "AWS::NoValue"},
                ]
            },
        }
        skips = GENERATED_CHECKOV_SKIPS["function"]
        if function == API_FUNCTION:
            # a ceiling (and a guarantee) for the API: a flood of logins cannot run up the bill
            properties["ReservedConcurrentExecutions"] = {
                "Fn::If": ["WithReservedConcurrency", {"Ref": "ApiReservedConcurrency"}, {"Ref": "AWS::NoValue"}]
            }
        else:
            skips = skips + GENERATED_CHECKOV_SKIPS["scheduled"]
        resources[function] = {"Properties": properties, "Metadata": checkov_skips(skips)}
        resources[f"{function}LogGroup"] = {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {
                "LogGroupName": {"Fn::Sub": f"/aws/lambda/${{{function}}}"},
                "RetentionInDays": {"Ref": "LogRetentionDays"},
                "KmsKeyId": {"Fn::GetAtt": ["DataKey", "Arn"]},
            },
        }

    # Stage-wide throttling in front of the API (a 429 costs no Lambda time). Chalice names the API
    # RestAPI; the SAM transform applies MethodSettings to its stage.
    resources["RestAPI"] = {
        "Properties": {
            "MethodSettings": [{
                "ResourcePath": "/*", "HttpMethod": "*",
                "ThrottlingRateLimit": {"Ref": "ApiThrottleRateLimit"},
                "ThrottlingBurstLimit": {"Ref": "ApiThrottleBurstLimit"},
            }],
        },
        "Metadata": checkov_skips(GENERATED_CHECKOV_SKIPS["api"]),
    }
    for logical in tables:
        resources[logical]["Metadata"] = checkov_skips(GENERATED_CHECKOV_SKIPS["table"])
    return template


def checkov_skips(skips: list[tuple[str, str]]) -> dict[str, Any]:
    return {"checkov": {"skip": [{"id": check, "comment": why} for check, why in skips]}}


# --------------------------------------------------------------------------------------------
# Bytecode
# --------------------------------------------------------------------------------------------


def compile_bundle(bundle: Path) -> int:
    """Add ``__pycache__/*.pyc`` for every module in the zip; returns how many were compiled.

    Unchecked hash-based .pyc: Python loads them without comparing them with the source's mtime
    (the zip's times need not survive Lambda's unpacking), which is right for a bundle that is
    never edited in place. They must match the runtime's Python version.
    """
    if sys.version_info[:2] != LAMBDA_PYTHON:
        raise BuildError(f"the Lambda runtime is Python {'.'.join(map(str, LAMBDA_PYTHON))}: "
                         f"run the build with that version (this is {sys.version.split()[0]})")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "bundle"
        with zipfile.ZipFile(bundle) as zf:
            entries = zf.infolist()
            zf.extractall(root)
        compileall.compile_dir(root, quiet=2, workers=1, ddir=".",
                               invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
        compiled = sorted(p for p in root.rglob("*.pyc") if p.parent.name == "__pycache__")
        known = {e.filename for e in entries}
        rewritten = bundle.with_suffix(".tmp")
        with zipfile.ZipFile(rewritten, "w", zipfile.ZIP_DEFLATED) as out:
            for entry in entries:
                out.writestr(entry, (root / entry.filename).read_bytes() if not entry.is_dir() else b"")
            for pyc in compiled:
                name = pyc.relative_to(root).as_posix()
                if name not in known:
                    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                    info.external_attr = 0o644 << 16
                    info.compress_type = zipfile.ZIP_DEFLATED
                    out.writestr(info, pyc.read_bytes())
        rewritten.replace(bundle)
    return len(compiled)


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def build(*, stage: str, stage_file_path: Path, out: Path, config_path: Path | None, with_deps: bool) -> Path:
    """Build the stage; returns the path of the packaged template (<out>/package/sam.json)."""
    stage_file = load_stage_file(stage_file_path)
    out = out.resolve()  # chalice resolves a relative path against its project folder, not ours
    region = str(stage_file.get("region") or os.environ.get("AWS_DEFAULT_REGION") or "eu-central-1")

    config_source = config_path or (Path(stage_file["config_file"]) if stage_file.get("config_file") else None)
    if config_source is None and os.environ.get("WISP_CONFIG"):
        config_source = Path(os.environ["WISP_CONFIG"])
    if config_source is not None:
        source = config_source if config_source.is_absolute() else ROOT / config_source
        try:
            config_text = source.read_text(encoding="utf-8")
        except OSError as exc:
            raise BuildError(f"cannot read configuration {source}: {exc.strerror}") from exc
    else:
        source = stage_file_path
        config_text = generated_config(stage_file)

    out.mkdir(parents=True, exist_ok=True)
    config_file = out / CONFIG_IN_PACKAGE
    config_file.write_text(config_text, encoding="utf-8")

    # chalicelib reads its environment at import: set it before the first import.
    env = chalice_env(region, config_file)
    for name in ("AWS_DEFAULT_REGION", "WISP_TABLE_PREFIX", "WISP_BUCKET"):
        os.environ[name] = env[name]
    sys.path.insert(0, str(ROOT))
    validate_config(config_text, str(source), stage_file)

    chalice_config = json.loads((ROOT / ".chalice" / "config.json").read_text(encoding="utf-8"))
    if chalice_config.get("api_gateway_stage") != API_STAGE:
        raise BuildError(f".chalice/config.json: api_gateway_stage must be {API_STAGE!r} (template URLs use it)")

    app_dir = out / "app"
    stage_project(app_dir, config_text, stage=stage, with_deps=with_deps)
    first = run_chalice(app_dir, stage, out / "discover", env)
    functions = chalice_functions(first)
    shutil.rmtree(out / "discover")

    base = load_cfn_yaml(BASE_TEMPLATE.read_text(encoding="utf-8"))
    merged = merge_template(base, functions, table_resources())
    merge_path = out / "merge.json"
    merge_path.write_text(json.dumps(merged, indent=2, sort_keys=False) + "\n", encoding="utf-8")

    run_chalice(app_dir, stage, out / "package", env, merge=merge_path)
    compile_bundle(out / "package" / "deployment.zip")
    (out / "parameters.json").write_text(
        json.dumps({"StackName": stack_name(stage), "Region": region,
                    "ArtifactBucket": stage_file.get("artifact_bucket"),
                    # deploy.py: the first deploy needs WISP_ADMIN_PASSWORD when the configuration uses it
                    "AdminPasswordSecretName": f"{stack_name(stage)}/admin-password",
                    "AdminPasswordRequired": ("${" + ADMIN_PASSWORD_ENV) in config_text,
                    "Parameters": stack_parameters(stage, stage_file)}, indent=2) + "\n",
        encoding="utf-8",
    )
    return out / "package" / "sam.json"


def stack_name(stage: str) -> str:
    """One stack per stage; its name prefixes the tables and matches .chalice/policy-<stage>.json."""
    return f"wisp-{stage}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", required=True)
    parser.add_argument("--stage-file", type=Path, help="default: infra/stages/<stage>.yml")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--config", type=Path, help="operator configuration to package instead of the generated one")
    parser.add_argument("--no-deps", action="store_true", help="package without requirements.txt (offline checks)")
    args = parser.parse_args(argv)
    try:
        template = build(
            stage=args.stage,
            stage_file_path=args.stage_file or INFRA / "stages" / f"{args.stage}.yml",
            out=args.out,
            config_path=args.config,
            with_deps=not args.no_deps,
        )
    except BuildError as exc:
        print(f"build failed: {exc}", file=sys.stderr)
        return 1
    print(f"built {template}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
