#!/bin/sh
# Bring the workspace volume (/workspace, shared by the Airflow components, the Celery workers
# and the serving app at the same path) to this image's project, keeping its state.
#
# Replaced from the image (/opt/retrain/project): pipelines/, dags/, expectations/, params/,
# params.yaml, dvc.yaml, pyproject.toml, .dvc/config, .dvcignore, .gitignore. Kept: data/,
# reports/, models/, the DVC cache and remote (.dvc/cache, .dvcstore), dvc.lock, git history.
# The workspace is a git repository (DVC needs one); each change of project is one commit.
# Run by `make stack` before the Airflow components start; idempotent.
set -eu
src=/opt/retrain/project
ws="${1:-/workspace}"
cd "$ws"

for d in pipelines dags expectations params; do  # swap whole folders: no stale module remains
  rm -rf ".$d.new" ".$d.old"
  cp -R "$src/$d" ".$d.new"
  [ -e "$d" ] && mv "$d" ".$d.old"
  mv ".$d.new" "$d"
  rm -rf ".$d.old"
done
for f in pyproject.toml dvc.yaml params.yaml .dvcignore .gitignore; do
  cp "$src/$f" "$f"
done
mkdir -p .dvc .dvcstore
cp "$src/.dvc/config" .dvc/config
printf '/config.local\n/tmp\n/cache\n' >.dvc/.gitignore

[ -d .git ] || git init -q
git config user.name retrain
git config user.email retrain@localhost
git add -A
if ! git diff --cached --quiet; then
  git commit -qm "workspace: project of ${RETRAIN_IMAGE_TAG:-the pipeline image}"
  echo "workspace-init: $ws at $(git rev-parse --short HEAD) (project of ${RETRAIN_IMAGE_TAG:-the image})"
else
  echo "workspace-init: $ws unchanged at $(git rev-parse --short HEAD)"
fi

# Where a night's `deploy` task finds the serving app: the recorded deployment (the serving
# folder's state.json) names its address inside the compose network. The serving app follows
# the champion alias itself; `deploy` then waits until it serves the new version and checks its
# answers. Written once: a later deployment record is kept.
state="models/serving/state.json"
if [ -n "${RETRAIN_SERVE_ADDRESS:-}" ] && [ ! -s "$state" ]; then
  mkdir -p "$(dirname "$state")"
  printf '{"mode": "local", "address": "%s"}\n' "$RETRAIN_SERVE_ADDRESS" >"$state"
fi
