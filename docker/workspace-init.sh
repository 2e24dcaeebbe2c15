#!/bin/sh
# Bring the workspace volume (/workspace, shared by the Airflow components, the Celery workers
# and the serving app at the same path) to this image's project, keeping its state and the
# user's configuration.
#
# Replaced from the image (/opt/retrain/project): pipelines/, dags/, expectations/, params/,
# params.yaml, dvc.yaml, pyproject.toml, .dvc/config, .dvcignore, .gitignore. Kept: data/,
# reports/, models/, the DVC cache and remote (.dvc/cache, .dvcstore), dvc.lock, git history.
# The workspace is a git repository (DVC needs one); each change of project is one commit.
# Run by `make stack` before the Airflow components start; idempotent.
#
# Configuration (params.yaml and params/*.yaml) is the user's: an edit made in the workspace is
# never dropped. Each file is merged three ways: the user's file, the image's file as last put
# in place (kept in .git/retrain-image/; before that, the last commit's) and this image's:
#   - not edited in the workspace: this image's file replaces it;
#   - edited, and the image's unchanged: the user's file stays;
#   - edited, and the image's changed too: `git merge-file`; a clean merge is written, and
#     when both changed the same lines nothing at all is replaced: the script stops (exit 1)
#     saying where configuration lives, with this image's file beside the user's as
#     <file>.image. The next run keeps the user's file as it is then (merged by hand, or not)
#     and removes <file>.image.
# RETRAIN_PROJECT_SRC names another project folder than the image's (tests run the script on
# temporary folders: tests/unit/test_workspace_init_script.py).
set -eu
src="${RETRAIN_PROJECT_SRC:-/opt/retrain/project}"
ws="${1:-/workspace}"
volume="${RETRAIN_WORKSPACE_VOLUME:-the workspace volume}"
cd "$ws"
here="$(pwd)"

[ -d .git ] || git init -q
git config user.name retrain
git config user.email retrain@localhost
seen=.git/retrain-image  # the image's configuration files as last put in place
plan=.git/retrain-plan   # this run's configuration files, decided before anything is replaced
rm -rf "$plan"
mkdir -p "$plan"

config_files() {  # the configuration files of a project folder, one per line
  (cd "$1" && { [ -f params.yaml ] && echo params.yaml
    [ -d params ] && find params -type f ! -name '*.image'; } 2>/dev/null || true)
}

base_of() {  # base_of <file> <out>: the image's file as last put in place, if known
  if [ -f "$seen/$1" ]; then
    cp "$seen/$1" "$2"
  elif [ ! -d "$seen" ] && git cat-file -e "HEAD:$1" 2>/dev/null; then
    git show "HEAD:$1" >"$2"  # a workspace made before .git/retrain-image was kept
  else
    return 1
  fi
}

conflicts=""
for f in $( { config_files "$src"; config_files .; } | sort -u); do
  out="$plan/$f"
  mkdir -p "$(dirname "$out")"
  base="$plan/.base"
  if [ ! -f "$f" ]; then  # new in the image (or removed by the user): the image's
    [ -f "$src/$f" ] && cp "$src/$f" "$out"
  elif [ -f "$f.image" ]; then  # merged by hand after a refusal: the user's file, as it is
    cp "$f" "$out"
    echo "workspace-init: $f: yours, as you left it after the last refusal ($f.image removed)"
  elif [ ! -f "$src/$f" ]; then  # not the image's: the user's own, or dropped by the image
    cp "$f" "$out"
    if base_of "$f" "$base" && ! cmp -s "$f" "$base"; then
      echo "workspace-init: $f: the image has no such file any more; your edited copy is kept"
    elif ! base_of "$f" "$base"; then
      :  # the user's own file: kept, nothing to say
    else
      rm -f "$out"  # the image dropped it and it was never edited
    fi
  elif cmp -s "$f" "$src/$f"; then
    cp "$f" "$out"
  elif ! base_of "$f" "$base"; then  # edited, and no record of what the image gave before
    cp "$f" "$out"
    conflicts="$conflicts $f"
  elif cmp -s "$f" "$base"; then  # not edited: the image's
    cp "$src/$f" "$out"
  elif cmp -s "$src/$f" "$base"; then  # edited; the image's did not change: the user's
    cp "$f" "$out"
    echo "workspace-init: $f: your edits are kept (the image's file is unchanged)"
  elif git merge-file -q -p "$f" "$base" "$src/$f" >"$out" 2>/dev/null; then
    echo "workspace-init: $f: your edits merged with the image's changes"
  else
    conflicts="$conflicts $f"
  fi
done
rm -f "$plan/.base"

if [ -n "$conflicts" ]; then
  for f in $conflicts; do
    cp "$src/$f" "$f.image"
  done
  rm -rf "$plan"
  cat >&2 <<EOF
workspace-init: REFUSED: nothing was replaced. Your edits in the workspace and this image both
change the same lines of:$conflicts
  Configuration lives in the workspace ($ws in the containers, $volume on the host):
  params.yaml and params/. The image's new version of each file is beside yours as <file>.image.
  Merge what you want from it into your file (for example from a shell in the volume:
  podman run --rm -it -v <volume>:$ws <pipeline image> sh), then run \`make stack\` again:
  your file is then kept as it is, and <file>.image removed.
EOF
  exit 1
fi

for d in pipelines dags expectations; do  # swap whole folders: no stale module remains
  rm -rf ".$d.new" ".$d.old"
  cp -R "$src/$d" ".$d.new"
  [ -e "$d" ] && mv "$d" ".$d.old"
  mv ".$d.new" "$d"
  rm -rf ".$d.old"
done
for f in pyproject.toml dvc.yaml .dvcignore .gitignore; do
  cp "$src/$f" "$f"
done
rm -rf params params.yaml params.yaml.image  # the configuration decided above
(cd "$plan" && find . -type f) | while read -r f; do
  mkdir -p "$(dirname "$f")"
  cp "$plan/$f" "$f"
done
mkdir -p params
rm -rf "$plan" "$seen"
mkdir -p "$seen"
config_files "$src" | while read -r f; do
  mkdir -p "$here/$seen/$(dirname "$f")"
  cp "$src/$f" "$here/$seen/$f"
done
mkdir -p .dvc .dvcstore
cp "$src/.dvc/config" .dvc/config
printf '/config.local\n/tmp\n/cache\n' >.dvc/.gitignore

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
