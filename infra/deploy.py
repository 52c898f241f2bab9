#!/usr/bin/env python3
"""Deploy a built stage (infra/build.py) with the AWS CLI: ``cloudformation package`` + ``deploy``.

    python infra/deploy.py [--build-dir infra/build] [--artifact-bucket BUCKET] [--dry-run]

The stack name, region, artifact bucket and parameters come from <build-dir>/parameters.json.
The first admin's password is read from the environment (``WISP_ADMIN_PASSWORD``) and never written
to a file; on later deploys it may be left unset, and the stack keeps the previous value.
``--dry-run`` prints the commands instead of running them (CI runs it; no AWS account needed).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BUILD = ROOT / "infra" / "build"
CAPABILITIES = ("CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND")  # roles; the SAM transform
ENV_ADMIN_PASSWORD = "WISP_ADMIN_PASSWORD"
ENV_ARTIFACT_BUCKET = "WISP_ARTIFACT_BUCKET"


PROVISION_LOGICAL_ID = "ProvisionUsers"  # chalice package's logical id of schedules.PROVISION_NAME


class DeployError(Exception):
    pass


def commands(build_dir: Path, *, artifact_bucket: str | None, admin_password: str | None) -> list[list[str]]:
    """The two AWS CLI calls for the stage built in ``build_dir``."""
    try:
        meta = json.loads((build_dir / "parameters.json").read_text(encoding="utf-8"))
    except OSError as exc:
        raise DeployError(f"{build_dir}/parameters.json missing: run infra/build.py first") from exc
    bucket = artifact_bucket or meta.get("ArtifactBucket")
    if not bucket:
        raise DeployError(f"no artifact bucket: set artifact_bucket in the stage file or {ENV_ARTIFACT_BUCKET}")
    template = build_dir / "package" / "sam.json"
    packaged = build_dir / "packaged.yaml"
    region = meta["Region"]
    overrides = [f"{key}={value}" for key, value in meta["Parameters"].items()]
    if admin_password:
        if len(admin_password) < 12:
            raise DeployError(f"{ENV_ADMIN_PASSWORD} must have at least 12 characters")
        overrides.append(f"AdminPassword={admin_password}")
    package = ["aws", "cloudformation", "package", "--region", region,
               "--template-file", str(template), "--s3-bucket", bucket, "--s3-prefix", meta["StackName"],
               "--output-template-file", str(packaged)]
    deploy = ["aws", "cloudformation", "deploy", "--region", region,
              "--template-file", str(packaged), "--stack-name", meta["StackName"],
              "--s3-bucket", bucket, "--s3-prefix", meta["StackName"],
              "--capabilities", *CAPABILITIES, "--no-fail-on-empty-changeset",
              "--parameter-overrides", *overrides]
    return [package, deploy]


def provision_commands(build_dir: Path) -> tuple[list[str], list[str]]:
    """Look up the provisioning function of the deployed stack, then invoke it (spec §9:
    provisioned accounts are created/updated at every start; here: at every deploy)."""
    meta = json.loads((build_dir / "parameters.json").read_text(encoding="utf-8"))
    region = meta["Region"]
    lookup = ["aws", "cloudformation", "describe-stack-resource", "--region", region,
              "--stack-name", meta["StackName"], "--logical-resource-id", PROVISION_LOGICAL_ID,
              "--query", "StackResourceDetail.PhysicalResourceId", "--output", "text"]
    invoke = ["aws", "lambda", "invoke", "--region", region, "--function-name", "<function>",
              "--cli-read-timeout", "300", str(build_dir / "provision-result.json")]
    return lookup, invoke


def _shown(command: list[str]) -> str:
    return " ".join(shlex.quote("AdminPassword=****" if arg.startswith("AdminPassword=") else arg) for arg in command)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-dir", type=Path, default=DEFAULT_BUILD)
    parser.add_argument("--artifact-bucket", default=os.environ.get(ENV_ARTIFACT_BUCKET))
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = parser.parse_args(argv)
    try:
        steps = commands(args.build_dir, artifact_bucket=args.artifact_bucket,
                         admin_password=os.environ.get(ENV_ADMIN_PASSWORD))
    except DeployError as exc:
        print(f"deploy failed: {exc}", file=sys.stderr)
        return 1
    for command in steps:
        print(f"+ {_shown(command)}", flush=True)
        if not args.dry_run:
            done = subprocess.run(command)
            if done.returncode != 0:
                return done.returncode
    lookup, invoke = provision_commands(args.build_dir)
    print(f"+ {_shown(lookup)}", flush=True)
    if args.dry_run:
        print(f"+ {_shown(invoke)}", flush=True)
        return 0
    found = subprocess.run(lookup, capture_output=True, text=True)
    if found.returncode != 0:
        print(found.stderr, file=sys.stderr)
        return found.returncode
    invoke[invoke.index("<function>")] = found.stdout.strip()
    print(f"+ {_shown(invoke)}", flush=True)
    return subprocess.run(invoke).returncode


if __name__ == "__main__":
    sys.exit(main())
