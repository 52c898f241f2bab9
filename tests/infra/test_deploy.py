"""infra/deploy.py and the documented deploy commands, offline (no AWS account here)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from infra import deploy

from .conftest import ROOT, build_env

README = ROOT / "infra" / "README.md"


def _dry_run(built: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "WISP_ADMIN_PASSWORD"} | env
    return subprocess.run([sys.executable, str(ROOT / "infra" / "deploy.py"), "--build-dir", str(built), "--dry-run"],
                          capture_output=True, text=True, timeout=60, env=environment)


def test_dry_run_prints_every_step_and_never_the_password(built):
    done = _dry_run(built, WISP_ADMIN_PASSWORD="a-long-enough-secret")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("+ aws cloudformation describe-stacks") and "--stack-name wisp-dev" in lines[0]
    assert lines[1].startswith("+ aws cloudformation package") and "--s3-bucket my-uni-cfn-artifacts" in lines[1]
    assert lines[2].startswith("+ aws cloudformation deploy") and "--stack-name wisp-dev" in lines[2]
    assert "MaxRunners=1" in lines[2] and "AdminPassword" not in lines[2]
    # the password goes into the stack's secret from a file, never on a command line or into the stack
    assert lines[3].startswith("+ aws secretsmanager put-secret-value") and "--secret-id wisp-dev/admin-password" in lines[3]
    assert "file://" in lines[3]
    assert lines[4].startswith("+ aws cloudformation describe-stack-resource") and "ProvisionUsers" in lines[4]
    assert lines[5].startswith("+ aws lambda invoke")
    # then the built web app goes to the stack's frontend bucket, and CloudFront's cache is cleared
    assert lines[6].startswith("+ aws cloudformation describe-stacks") and "FrontendBucketName" in lines[6]
    assert lines[7].startswith("+ aws s3 sync") and "web/dist/ 's3://<bucket>/' --delete" in lines[7]
    assert lines[8].startswith("+ aws cloudfront create-invalidation") and "'/*'" in lines[8]
    assert "a-long-enough-secret" not in done.stdout + done.stderr


def test_a_short_password_fails_before_anything_runs(built):
    done = _dry_run(built, WISP_ADMIN_PASSWORD="short")
    assert done.returncode == 1 and "at least 12 characters" in done.stderr and done.stdout == ""


def test_a_first_deploy_without_the_password_stops_with_the_reason(built):
    meta = json.loads((built / "parameters.json").read_text())
    assert meta["AdminPasswordRequired"] is True  # the example stage provisions admin_email
    error = deploy.first_deploy_error(built, stack_exists=False, admin_password=None)
    assert error and "WISP_ADMIN_PASSWORD" in error and "Nothing was deployed" in error
    assert deploy.first_deploy_error(built, stack_exists=True, admin_password=None) is None
    assert deploy.first_deploy_error(built, stack_exists=False, admin_password="x" * 12) is None


def test_a_failed_provisioning_function_fails_the_deploy(tmp_path):
    payload = tmp_path / "out.json"
    payload.write_text(json.dumps({"errorType": "ConfigError", "errorMessage": "password: too short"}))
    # aws lambda invoke exits 0 and says FunctionError when the function raised
    failure = deploy.invoke_failure(json.dumps({"StatusCode": 200, "FunctionError": "Unhandled"}), payload)
    assert failure == "Unhandled: ConfigError: password: too short"
    payload.write_text("null")
    assert deploy.invoke_failure(json.dumps({"StatusCode": 200, "ExecutedVersion": "$LATEST"}), payload) is None


def _fake_aws(monkeypatch, tmp_path, invoke_answer: dict, payload: dict) -> list[list[str]]:
    """deploy.py's real (non-dry) path with the AWS CLI replaced: records every command and answers
    as a deployed stack would; the provisioning invoke answers ``invoke_answer`` with ``payload``.
    A built web app stands in for web/dist. Returns the list the commands are recorded in."""
    calls: list[list[str]] = []

    def fake_run(command, **kwargs):
        calls.append(command)
        out = ""
        if command[:3] == ["aws", "cloudformation", "describe-stack-resource"]:
            out = "wisp-dev-ProvisionUsers-abc\n"
        if command[:3] == ["aws", "lambda", "invoke"]:
            Path(command[-1]).write_text(json.dumps(payload))
            out = json.dumps(invoke_answer)
        if command[:3] == ["aws", "cloudformation", "describe-stacks"] and "FrontendBucketName" in " ".join(command):
            out = "FrontendBucketName\twisp-dev-frontend-123\nFrontendDistributionId\tE2ABC\n"
        return subprocess.CompletedProcess(command, 0, out, "")

    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "index.html").write_text("<!DOCTYPE html>")
    monkeypatch.setattr(deploy, "WEB_DIST", dist)
    monkeypatch.setattr(deploy.subprocess, "run", fake_run)
    monkeypatch.setenv("WISP_ADMIN_PASSWORD", "a-long-enough-secret")
    return calls


def _work_copy(built: Path, name: str) -> Path:
    work = built.parent / name
    shutil.copytree(built, work, dirs_exist_ok=True, ignore=shutil.ignore_patterns("app"))
    return work


def test_main_stops_on_function_error(built, monkeypatch, capsys, tmp_path):
    """The invoke answers FunctionError: the deploy fails and says why."""
    calls = _fake_aws(monkeypatch, tmp_path, {"StatusCode": 200, "FunctionError": "Unhandled"},
                      {"errorType": "ConfigError", "errorMessage": "boom"})
    assert deploy.main(["--build-dir", str(_work_copy(built, "deploy-main"))]) == 1
    assert "ProvisionUsers failed: Unhandled: ConfigError: boom" in capsys.readouterr().err
    put = next(c for c in calls if c[:3] == ["aws", "secretsmanager", "put-secret-value"])
    assert not any("a-long-enough-secret" in arg for c in calls for arg in c)
    assert put[-1].startswith("file://") and "<secret file>" not in put[-1]


def test_a_deploy_uploads_the_web_app_to_the_stacks_frontend(built, monkeypatch, tmp_path):
    """Provisioning succeeds, then web/dist goes to the bucket the stack names, and the
    distribution's cache is cleared."""
    calls = _fake_aws(monkeypatch, tmp_path, {"StatusCode": 200}, {"ok": True})
    work = _work_copy(built, "deploy-frontend")
    assert deploy.main(["--build-dir", str(work)]) == 0
    sync = next(c for c in calls if c[:3] == ["aws", "s3", "sync"])
    assert sync[3:6] == [f"{tmp_path / 'dist'}/", "s3://wisp-dev-frontend-123/", "--delete"]
    invalidation = next(c for c in calls if c[:3] == ["aws", "cloudfront", "create-invalidation"])
    assert "E2ABC" in invalidation
    # a missing build stops the deploy before anything runs
    calls.clear()
    monkeypatch.setattr(deploy, "WEB_DIST", tmp_path / "nothing")
    assert deploy.main(["--build-dir", str(work)]) == 1 and calls == []


def _documented_dry_run() -> str:
    """The dry-run command exactly as infra/README.md tells the operator to type it."""
    commands = re.findall(r"`(make deploy-dry-run STAGE=[a-z]+)`", README.read_text(encoding="utf-8"))
    assert commands, "infra/README.md no longer documents make deploy-dry-run"
    return commands[0]


def test_the_documented_dry_run_works_offline_from_a_checkout(tmp_path):
    """`make deploy-dry-run STAGE=example` in a copy of the repository (so that the build folder of
    the working tree, which a developer may be using, is not touched), with the example stage."""
    command = _documented_dry_run()
    assert command == "make deploy-dry-run STAGE=example"
    checkout = tmp_path / "checkout"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.splitlines()
    for name in files:
        source = ROOT / name
        if source.is_file():
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, checkout / name)
    (checkout / ".venv").symlink_to(ROOT / ".venv")
    env = build_env()
    env.pop("WISP_ADMIN_PASSWORD", None)
    done = subprocess.run(command.split(), cwd=checkout, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "+ aws cloudformation deploy" in done.stdout and "--stack-name wisp-example" in done.stdout
    assert (checkout / "infra" / "build" / "package" / "sam.json").is_file()
    # the relative build folder no longer lands inside chalice's project folder
    assert not (checkout / "infra" / "build" / "app" / "infra").exists()
