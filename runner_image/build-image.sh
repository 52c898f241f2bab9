#!/usr/bin/env bash
# Build the runner image with its large model baked in (infra/push-runner-image.sh runs this).
#   runner_image/build-image.sh <image name:tag>
# Environment:
#   WISP_LARGE_MODEL   large-v3 (default) or large-v3-turbo: the model that serves jobs asking for `large`
#   WISP_EXTRA_MODELS  more pinned models to bake in, space-separated (e.g. large-v3-turbo, which also
#                      serves `turbo`)
#   WISP_MODEL_SOURCE  a mirror or file:// directory instead of https://huggingface.co
#   WISP_MODEL_CACHE   download cache (default ~/.cache/wisp-runner-models), kept between builds
#   WISP_MODEL_PINS    another pins file than runner_image/tools/model_pins.json
#   PYTHON             the Python 3 to run tools/fetch_models.py with (standard library only)
# Step 1 downloads each pinned file once, checks its SHA-256 and stages the models in
# runner_image/baked_models/; step 2 is docker build. Needs Docker (with buildx on ARM machines).
set -euo pipefail
image="${1:?usage: $0 <image name:tag>}"
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-python3}"

also=()
for model in ${WISP_EXTRA_MODELS:-}; do also+=(--also "$model"); done
"$python" "$here/tools/fetch_models.py" --large "${WISP_LARGE_MODEL:-large-v3}" ${also[@]+"${also[@]}"}

git_hash="$(git -C "$here" rev-parse HEAD 2>/dev/null || echo unknown)"
docker build --platform linux/amd64 --build-arg GIT_HASH="$git_hash" -t "$image" "$here"
echo "built $image ('large' is ${WISP_LARGE_MODEL:-large-v3})"
