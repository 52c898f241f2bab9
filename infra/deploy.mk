# Deploy targets (owned by infra/). The main Makefile includes this file:  include infra/deploy.mk
#
#   make deploy STAGE=prod            build infra/build/ and deploy the stack wisp-prod
#   make deploy-build STAGE=prod      only build (template, package, parameters); offline
#   make deploy-dry-run STAGE=prod    build (offline: without requirements.txt), then print the aws
#                                     commands instead of running them
#   make runner-image STAGE=prod      build the runner image and push it to the stack's ECR repository
#   make deploy-check                 the infra checks (cfn-lint, checkov, quotas, moto stack, Dockerfile lint)
#
# Needs: STAGE, a stage file infra/stages/$(STAGE).yml (copy infra/stages/example.yml); for deploy,
# AWS credentials and the AWS CLI v2; WISP_ADMIN_PASSWORD on the first deploy. See infra/README.md.

DEPLOY_PYTHON ?= $(if $(wildcard .venv/bin/python),.venv/bin/python,python3)
STAGE_FILE ?= infra/stages/$(STAGE).yml
DEPLOY_BUILD_DIR ?= infra/build
RUNNER_IMAGE_TAG ?= latest
# absolute: chalice resolves a relative output folder against its own project folder
DEPLOY_BUILD_ABS = $(abspath $(DEPLOY_BUILD_DIR))
# checkov pins its own boto3 and friends, so it lives in a venv of its own (inside .venv, ignored)
CHECKOV_VENV := .venv/checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed

.PHONY: deploy deploy-build deploy-dry-run runner-image deploy-check _require-stage _deploy-build-offline

_require-stage:
	@test -n "$(STAGE)" || { echo "usage: make deploy STAGE=<name>  (stage file infra/stages/<name>.yml)"; exit 2; }

deploy-build: _require-stage
	$(DEPLOY_PYTHON) infra/build.py --stage $(STAGE) --stage-file $(STAGE_FILE) --out $(DEPLOY_BUILD_ABS)

_deploy-build-offline: _require-stage
	$(DEPLOY_PYTHON) infra/build.py --stage $(STAGE) --stage-file $(STAGE_FILE) --out $(DEPLOY_BUILD_ABS) --no-deps

deploy: deploy-build web/dist/index.html
	$(DEPLOY_PYTHON) infra/deploy.py --build-dir $(DEPLOY_BUILD_ABS)

deploy-dry-run: _deploy-build-offline
	$(DEPLOY_PYTHON) infra/deploy.py --build-dir $(DEPLOY_BUILD_ABS) --dry-run

runner-image: _require-stage
	infra/push-runner-image.sh wisp-$(STAGE) $(RUNNER_IMAGE_TAG)

deploy-check: $(CHECKOV_STAMP)
	$(DEPLOY_PYTHON) -m pytest -q tests/infra

# `make test` runs tests/infra, whose checkov test needs this venv (it skips without it).
test: $(CHECKOV_STAMP)

$(CHECKOV_STAMP): infra/requirements-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --disable-pip-version-check -q -r infra/requirements-checkov.txt
	touch $@
