#!/usr/bin/env python3
"""Deploy a built stage (infra/build.py) with the AWS CLI.

    python infra/deploy.py [--build-dir infra/build] [--artifact-bucket BUCKET] [--dry-run]

Steps: find out whether the stack exists (a first deploy needs ``WISP_ADMIN_PASSWORD`` when the
configuration provisions an admin, and stops here without it); ``cloudformation package`` and
``deploy``; put ``WISP_ADMIN_PASSWORD`` into the stack's admin-password secret (from a private
temporary file, so it appears in no command line, stack parameter or Lambda environment); invoke
the provisioning function and fail when the function failed (``aws lambda invoke`` itself exits 0
then); with the stage's frontend on, upload the built web app (``web/dist``) to the stack's
frontend bucket and clear CloudFront's cache.

The stack name, region, artifact bucket and parameters come from <build-dir>/parameters.json.
On later deploys ``WISP_ADMIN_PASSWORD`` may be left unset: the secret keeps its value.
``--dry-run`` prints the commands instead of running them (CI runs it; no AWS account needed).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BUILD = ROOT / "infra" / "build"
CAPABILITIES = ("CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND")  # roles; the SAM transform
ENV_ADMIN_PASSWORD = "WISP_ADMIN_PASSWORD"
ENV_ARTIFACT_BUCKET = "WISP_ARTIFACT_BUCKET"
MIN_PASSWORD_LENGTH = 12  # chalicelib/settings.py ProvisionedUser.password
SECRET_FILE = "<secret file>"  # replaced by a private temporary file when the command runs

PROVISION_LOGICAL_ID = "ProvisionUsers"  # chalice package's logical id of schedules.PROVISION_NAME


class DeployError(Exception):
    pass


def _meta(build_dir: Path) -> dict:
    try:
        return json.loads((build_dir / "parameters.json").read_text(encoding="utf-8"))
    except OSError as exc:
        raise DeployError(f"{build_dir}/parameters.json missing: run infra/build.py first") from exc


def check_password(admin_password: str | None) -> None:
    if admin_password is not None and len(admin_password) < MIN_PASSWORD_LENGTH:
        raise DeployError(f"{ENV_ADMIN_PASSWORD} must have at least {MIN_PASSWORD_LENGTH} characters")


def stack_exists_command(build_dir: Path) -> list[str]:
    meta = _meta(build_dir)
    return ["aws", "cloudformation", "describe-stacks", "--region", meta["Region"],
            "--stack-name", meta["StackName"], "--query", "Stacks[0].StackStatus", "--output", "text"]


def first_deploy_error(build_dir: Path, *, stack_exists: bool, admin_password: str | None) -> str | None:
    """Why a deploy must not start, or None: a first deploy needs the admin password."""
    meta = _meta(build_dir)
    if stack_exists or admin_password or not meta.get("AdminPasswordRequired", True):
        return None
    return (f"{meta['StackName']} does not exist yet, and its configuration provisions an admin account: "
            f"export {ENV_ADMIN_PASSWORD}='<at least {MIN_PASSWORD_LENGTH} characters>' for the first deploy "
            f"(infra/README.md §5). Nothing was deployed.")


def commands(build_dir: Path, *, artifact_bucket: str | None) -> list[list[str]]:
    """The two AWS CLI calls for the stage built in ``build_dir``: package and deploy."""
    meta = _meta(build_dir)
    bucket = artifact_bucket or meta.get("ArtifactBucket")
    if not bucket:
        raise DeployError(f"no artifact bucket: set artifact_bucket in the stage file or {ENV_ARTIFACT_BUCKET}")
    template = build_dir / "package" / "sam.json"
    packaged = build_dir / "packaged.yaml"
    region = meta["Region"]
    overrides = [f"{key}={value}" for key, value in meta["Parameters"].items()]
    package = ["aws", "cloudformation", "package", "--region", region,
               "--template-file", str(template), "--s3-bucket", bucket, "--s3-prefix", meta["StackName"],
               "--output-template-file", str(packaged)]
    # --s3-bucket: the template goes to CloudFormation by S3 URL (1 MB limit), not in the request
    # body (51,200 bytes); tests/infra/test_quotas.py checks the size against the right one.
    deploy = ["aws", "cloudformation", "deploy", "--region", region,
              "--template-file", str(packaged), "--stack-name", meta["StackName"],
              "--s3-bucket", bucket, "--s3-prefix", meta["StackName"],
              "--capabilities", *CAPABILITIES, "--no-fail-on-empty-changeset",
              "--parameter-overrides", *overrides]
    return [package, deploy]


def put_password_command(build_dir: Path) -> list[str]:
    meta = _meta(build_dir)
    return ["aws", "secretsmanager", "put-secret-value", "--region", meta["Region"],
            "--secret-id", meta["AdminPasswordSecretName"], "--secret-string", f"file://{SECRET_FILE}"]


def provision_commands(build_dir: Path) -> tuple[list[str], list[str]]:
    """Look up the provisioning function of the deployed stack, then invoke it (spec §9:
    provisioned accounts are created/updated at every start; here: at every deploy)."""
    meta = _meta(build_dir)
    region = meta["Region"]
    lookup = ["aws", "cloudformation", "describe-stack-resource", "--region", region,
              "--stack-name", meta["StackName"], "--logical-resource-id", PROVISION_LOGICAL_ID,
              "--query", "StackResourceDetail.PhysicalResourceId", "--output", "text"]
    invoke = ["aws", "lambda", "invoke", "--region", region, "--function-name", "<function>",
              "--cli-read-timeout", "300", "--output", "json", str(build_dir / "provision-result.json")]
    return lookup, invoke


WEB_DIST = ROOT / "web" / "dist"  # Wisp's web app, built by `make web` (the deploy target builds it)


def frontend_commands(build_dir: Path, dist: Path | None = None, *,
                      require_build: bool = True) -> tuple[list[str], list[list[str]]] | None:
    """With the frontend distribution on (``EnableFrontend``): look up the stack's frontend bucket
    and distribution, upload the built web app there and clear CloudFront's cache. None when the
    stage has no frontend. ``<bucket>`` and ``<distribution>`` are filled from the lookup."""
    meta = _meta(build_dir)
    dist = WEB_DIST if dist is None else dist
    if str(meta.get("Parameters", {}).get("EnableFrontend", "true")).lower() != "true":
        return None
    if require_build and not (dist / "index.html").is_file():
        raise DeployError(f"{dist}/index.html missing: build the web app first (make web)")
    region = meta["Region"]
    lookup = ["aws", "cloudformation", "describe-stacks", "--region", region, "--stack-name", meta["StackName"],
              "--query", "Stacks[0].Outputs[?OutputKey=='FrontendBucketName' || OutputKey=='FrontendDistributionId']"
              ".[OutputKey,OutputValue]", "--output", "text"]
    upload = [["aws", "s3", "sync", f"{dist}/", "s3://<bucket>/", "--delete", "--region", region],
              ["aws", "cloudfront", "create-invalidation", "--distribution-id", "<distribution>", "--paths", "/*"]]
    return lookup, upload


def _filled(command: list[str], outputs: dict[str, str]) -> list[str]:
    return [part.replace("<bucket>", outputs.get("FrontendBucketName", ""))
            .replace("<distribution>", outputs.get("FrontendDistributionId", "")) for part in command]


def invoke_failure(cli_output: str, payload_file: Path) -> str | None:
    """The function's error when ``aws lambda invoke`` reports one (FunctionError), else None.

    The CLI exits 0 when the call succeeded but the function raised; only the response's
    FunctionError field and the payload (errorType, errorMessage) tell.
    """
    try:
        response = json.loads(cli_output or "{}")
    except json.JSONDecodeError:
        return f"unreadable answer from aws lambda invoke: {cli_output[:500]!r}"
    if not response.get("FunctionError") and int(response.get("StatusCode", 200)) < 300:
        return None
    try:
        payload = json.loads(payload_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        payload = {}
    if isinstance(payload, dict) and ("errorMessage" in payload or "errorType" in payload):
        detail = f"{payload.get('errorType', 'Error')}: {payload.get('errorMessage', '')}"
    else:
        detail = json.dumps(payload)[:2000]
    return f"{response.get('FunctionError') or 'status ' + str(response.get('StatusCode'))}: {detail}"


def _shown(command: list[str]) -> str:
    return " ".join(shlex.quote(arg) for arg in command)


def _run_with_secret_file(command: list[str], secret: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "value"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(secret)
        real = [arg.replace(SECRET_FILE, str(path)) for arg in command]
        return subprocess.run(real, capture_output=True, text=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-dir", type=Path, default=DEFAULT_BUILD)
    parser.add_argument("--artifact-bucket", default=os.environ.get(ENV_ARTIFACT_BUCKET))
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = parser.parse_args(argv)
    build_dir = args.build_dir.resolve()
    password = os.environ.get(ENV_ADMIN_PASSWORD) or None
    try:
        check_password(password)
        steps = commands(build_dir, artifact_bucket=args.artifact_bucket)
        exists = stack_exists_command(build_dir)
        meta = _meta(build_dir)
        # checked now, so a missing build fails before anything is deployed
        frontend = frontend_commands(build_dir, require_build=not args.dry_run)
    except DeployError as exc:
        print(f"deploy failed: {exc}", file=sys.stderr)
        return 1

    print(f"+ {_shown(exists)}", flush=True)
    if args.dry_run:
        if not password and meta.get("AdminPasswordRequired", True):
            print(f"note: a first deploy stops here without {ENV_ADMIN_PASSWORD}", file=sys.stderr)
    else:
        found = subprocess.run(exists, capture_output=True, text=True)
        if found.returncode != 0 and "does not exist" not in found.stderr:
            print(f"deploy failed: cannot tell whether the stack exists:\n{found.stderr}", file=sys.stderr)
            return found.returncode
        error = first_deploy_error(build_dir, stack_exists=found.returncode == 0, admin_password=password)
        if error:
            print(f"deploy failed: {error}", file=sys.stderr)
            return 1

    for command in steps:
        print(f"+ {_shown(command)}", flush=True)
        if not args.dry_run:
            done = subprocess.run(command)
            if done.returncode != 0:
                return done.returncode

    if password or args.dry_run:
        put = put_password_command(build_dir)
        print(f"+ {_shown(put)}", flush=True)
        if not args.dry_run:
            done = _run_with_secret_file(put, password or "")
            if done.returncode != 0:
                print(f"deploy failed: could not store {ENV_ADMIN_PASSWORD}:\n{done.stderr}", file=sys.stderr)
                return done.returncode

    lookup, invoke = provision_commands(build_dir)
    print(f"+ {_shown(lookup)}", flush=True)
    if args.dry_run:
        print(f"+ {_shown(invoke)}", flush=True)
        if frontend is not None:
            for command in [frontend[0], *frontend[1]]:
                print(f"+ {_shown(command)}", flush=True)
        return 0
    found = subprocess.run(lookup, capture_output=True, text=True)
    if found.returncode != 0:
        print(found.stderr, file=sys.stderr)
        return found.returncode
    invoke[invoke.index("<function>")] = found.stdout.strip()
    print(f"+ {_shown(invoke)}", flush=True)
    done = subprocess.run(invoke, capture_output=True, text=True)
    if done.returncode != 0:
        print(done.stdout + done.stderr, file=sys.stderr)
        return done.returncode
    failure = invoke_failure(done.stdout, Path(invoke[-1]))
    if failure:
        print(f"deploy failed: the stack is deployed, but {PROVISION_LOGICAL_ID} failed: {failure}", file=sys.stderr)
        return 1
    print("provisioned accounts are up to date", flush=True)
    return upload_frontend(frontend)


def upload_frontend(frontend: tuple[list[str], list[list[str]]] | None) -> int:
    """Put the built web app where the stack's CloudFront distribution serves it."""
    if frontend is None:
        return 0
    lookup, upload = frontend
    print(f"+ {_shown(lookup)}", flush=True)
    found = subprocess.run(lookup, capture_output=True, text=True)
    if found.returncode != 0:
        print(found.stderr, file=sys.stderr)
        return found.returncode
    outputs = dict(line.split("\t", 1) for line in found.stdout.strip().splitlines() if "\t" in line)
    if not outputs.get("FrontendBucketName") or not outputs.get("FrontendDistributionId"):
        print("deploy failed: the stack has no frontend bucket or distribution outputs", file=sys.stderr)
        return 1
    for command in upload:
        command = _filled(command, outputs)
        print(f"+ {_shown(command)}", flush=True)
        done = subprocess.run(command)
        if done.returncode != 0:
            return done.returncode
    print("the web app is uploaded; CloudFront serves it once the invalidation is done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
