#!/usr/bin/env bash
# Benchmarks of tree builds (release binary) against the daemon of BUILDKIT_HOST (run it
# through `make bench` or scripts/with-buildkit.sh). Prints, with the machine's load:
#   1. no-op re-run of one small recipe (examples/hello), median of 21 runs (target <= 25 ms);
#   2. no-op re-run of a generated 500-recipe tree, median of 5 (target <= 2 s);
#   3. a generated 30-recipe graph whose steps sleep, built with --jobs 4: wall time against
#      its critical path (the longest chain of sleeps; target <= 1.15x).
# Needs the demo repository (.state/demo/repo); it is created when missing. The 500-recipe
# tree is built once and kept in .state/bench-tree500 (its first build takes minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -n "${BUILDKIT_HOST:-}" ] || { echo "bench/graph.sh: BUILDKIT_HOST is not set" >&2; exit 2; }
cargo build --release --locked -p melange2 >&2
bin=target/release/melange2
demo=.state/demo
[ -f "$demo/repo/$(uname -m)/APKINDEX.tar.gz" ] || { scripts/deps.sh >&2 && MELANGE2_BIN=$bin scripts/demo.sh >/dev/null; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
NONCE=0
source bench/lib.sh
build() { # out-dir, then build args
  local out=$1
  shift
  "$bin" build "$@" -r "$demo/repo" -k "$demo/melange.rsa.pub" --signing-key "$demo/melange.rsa" \
    --out-dir "$out" --apk-cache-dir "$work/apk-cache" --progress quiet
}
# 1. one small recipe
build "$work/hello-out" examples/hello/melange.yaml >/dev/null 2>&1
one=$(for _ in $(seq 21); do seconds build "$work/hello-out" examples/hello/melange.yaml; done | median)
printf '1. no-op re-run, one recipe (median of 21): %.1f ms (target <= 25 ms)\n' \
  "$(awk -v s="$one" 'BEGIN { print s * 1000 }')"

# 2. a 500-recipe tree, built once, then re-run
tree500=.state/bench-tree500
if [ ! -f "$tree500/tree/p500.yaml" ]; then
  rm -rf "$tree500"
  gen_tree "$tree500/tree" 500 0
fi
echo "   (building the 500-recipe tree if needed; load $(load))" >&2
build "$tree500/out" "$tree500/tree" --jobs 4 >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
t500=$(for _ in 1 2 3 4 5; do seconds build "$tree500/out" "$tree500/tree"; done | median)
printf '2. no-op re-run, 500 recipes (median of 5): %.2f s (target <= 2 s)\n' "$t500"

# 3. a 30-recipe graph of sleeps
NONCE=$(date +%s%N)
gen_tree "$work/sleep" 30 1
critical=$(critical_path "$work/sleep.deps")
echo "   (30-recipe sleep graph; load $(load))" >&2
wall=$(seconds build "$work/sleep-out" "$work/sleep" --jobs 4)
printf '3. 30-recipe sleep graph, --jobs 4: wall %.1f s, critical path %d s, ratio %.3f (target <= 1.15)\n' \
  "$wall" "$critical" "$(awk -v w="$wall" -v c="$critical" 'BEGIN { print w / c }')"
echo "load at the end: $(load)"
