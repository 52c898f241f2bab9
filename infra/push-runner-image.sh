#!/usr/bin/env bash
# Build runner_image/ (with its large model baked in) and push it to the stack's ECR repository,
# then roll the runner service.
#   infra/push-runner-image.sh <stack-name> [tag]
#   WISP_LARGE_MODEL=large-v3-turbo infra/push-runner-image.sh <stack-name> [tag]
# The build (runner_image/build-image.sh) fetches the pinned model files once, verifies their
# SHA-256 and copies them into the image; see runner_image/README.md, "The image".
# Needs Docker (with buildx for x86_64 if you build on ARM), the AWS CLI v2 and credentials.
set -euo pipefail
stack="${1:?usage: $0 <stack-name> [tag]}"
tag="${2:-latest}"
output() {
  aws cloudformation describe-stacks --stack-name "$stack" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}
repo="$(output RunnerRepositoryUri)"
cluster="$(output ClusterName)"
service="$(output RunnerServiceName)"
registry="${repo%%/*}"
region="$(cut -d. -f4 <<<"$registry")"

aws ecr get-login-password --region "$region" | docker login --username AWS --password-stdin "$registry"
runner_image/build-image.sh "$repo:$tag"
docker push "$repo:$tag"
# Running runners keep their image; new tasks (the next scale-out) pull the new one.
aws ecs update-service --region "$region" --cluster "$cluster" --service "$service" --force-new-deployment >/dev/null
echo "pushed $repo:$tag"
