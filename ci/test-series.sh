#!/usr/bin/env bash
# What a CI bot runs for a mailing-list series: a kernel tree and the series in,
# reports out.
#
#   ci/test-series.sh TREE SERIES [--test NAME ...] [--runs N]
#
# TREE is a kernel git checkout (left untouched: the harness works in a
# worktree of its own), SERIES an mbox (b4 am style, cover letter allowed) or a
# directory of patches.  One run builds the base and each patch in turn (one
# incremental rebuild per patch) and runs the guest tests after each; its
# summary leads with the regressions the series brings against its own base
# (failures the base already had are listed apart, flaky tests too), names the
# first patch that breaks each test, and writes summary.txt, kcidb.json,
# patchwork.json (one check per patch) and index.html.  The whole series is
# then run once more through pytest for JUnit.  Both results directories keep
# a copy of the temporary kernels.yaml and provenance.json (harness commit,
# command line; the tree's commit and patch hashes are in summary.json), so
# the run can be reproduced: kharness rerun RESULTS_DIR.  Exit 0 unless the
# series regressed something (or the harness itself failed).
set -euo pipefail
if (($# < 2)); then
  sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' >&2
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
# --test NAME ... limits both steps; --runs N too
select=() runs=()
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  [[ ${args[i]} == --test ]] && select+=(--test "${args[i + 1]:-}")
  [[ ${args[i]} == --runs ]] && runs=(--runs "${args[i + 1]:-}")
done
py="$repo/.venv/bin/python"
results="${KHARNESS_RESULTS:-$repo/results}"
status=0
"$py" -m harness --kernels-file "$work/kernels.yaml" series --kernel series --results-dir "$results" "$@" \
  || status=$?
series_run=$(readlink -f "$results/latest")
run_status=0
"$py" -m harness --kernels-file "$work/kernels.yaml" run --results-dir "$results" "${runs[@]}" \
  "${select[@]}" || run_status=$?
# failures the base already had do not fail the bot (pytest's 1); a broken harness does
((run_status > 1 && status == 0)) && status=$run_status
echo
echo "=== series summary (regressions first): $series_run ==="
cat "$series_run/summary.txt" 2>/dev/null || echo "(no summary: the series run did not finish)"
echo "page: $series_run/index.html   checks: $series_run/patchwork.json"
exit "$status"
