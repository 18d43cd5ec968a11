#!/usr/bin/env bash
# What a CI bot runs for a mailing-list series: a kernel tree and the series in,
# reports out.
#
#   ci/test-series.sh TREE SERIES [--test NAME ...]
#
# TREE is a kernel git checkout (left untouched: the harness works in a
# worktree of its own), SERIES an mbox (b4 am style, cover letter allowed) or a
# directory of patches.  It builds the base and each patch in turn (one
# incremental rebuild per patch), runs the guest tests after each, and prints
# the matrix naming the first patch that breaks each test; the whole series is
# then run once more through pytest for JUnit, summary.txt (fit to paste into
# a reply) and kcidb.json.  Exit 0 when no patch breaks a test.
set -euo pipefail
if (($# < 2)); then
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
tree=$(realpath "$1") series=$(realpath "$2"); shift 2
repo=$(cd "$(dirname "$0")/.." && pwd)
bash "$repo/ci/bootstrap.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/kernels.yaml" <<YAML
kernels:
  - name: series
    build: {source: "$tree", series: ["$series"]}
YAML
# --test NAME ... limits both steps: the series matrix and the final pytest run
names=()
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  [[ ${args[i]} == --test ]] && names+=("${args[i + 1]:-}")
done
select=()
if ((${#names[@]})); then
  expr=$(printf ' or %s' "${names[@]}")
  select=(-- -k "${expr# or }")
fi
py="$repo/.venv/bin/python"
status=0
"$py" -m harness --kernels-file "$work/kernels.yaml" series series "$@" || status=$?
"$py" -m harness --kernels-file "$work/kernels.yaml" run "${select[@]}" || status=$((status ? status : $?))
exit "$status"
