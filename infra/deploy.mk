# Deploy targets (owned by infra/). The main Makefile includes this file:  include infra/deploy.mk
#
#   make deploy STAGE=prod            build infra/build/ and deploy the stack wisp-prod
#   make deploy-build STAGE=prod      only build (template, package, parameters); offline
#   make deploy-dry-run STAGE=prod    build, then print the aws commands instead of running them
#   make runner-image STAGE=prod      build the runner image and push it to the stack's ECR repository
#   make deploy-check                 the infra checks (cfn-lint, moto stack, scaling, Dockerfile lint)
#
# Needs: STAGE, a stage file infra/stages/$(STAGE).yml (copy infra/stages/example.yml); for deploy,
# AWS credentials and the AWS CLI v2; WISP_ADMIN_PASSWORD on the first deploy. See infra/README.md.

DEPLOY_PYTHON ?= $(if $(wildcard .venv/bin/python),.venv/bin/python,python3)
STAGE_FILE ?= infra/stages/$(STAGE).yml
DEPLOY_BUILD_DIR ?= infra/build
RUNNER_IMAGE_TAG ?= latest

.PHONY: deploy deploy-build deploy-dry-run runner-image deploy-check _require-stage

_require-stage:
	@test -n "$(STAGE)" || { echo "usage: make deploy STAGE=<name>  (stage file infra/stages/<name>.yml)"; exit 2; }

deploy-build: _require-stage
	$(DEPLOY_PYTHON) infra/build.py --stage $(STAGE) --stage-file $(STAGE_FILE) --out $(DEPLOY_BUILD_DIR)

deploy: deploy-build
	$(DEPLOY_PYTHON) infra/deploy.py --build-dir $(DEPLOY_BUILD_DIR)

deploy-dry-run: deploy-build
	$(DEPLOY_PYTHON) infra/deploy.py --build-dir $(DEPLOY_BUILD_DIR) --dry-run

runner-image: _require-stage
	infra/push-runner-image.sh wisp-$(STAGE) $(RUNNER_IMAGE_TAG)

deploy-check:
	$(DEPLOY_PYTHON) -m pytest -q tests/infra
