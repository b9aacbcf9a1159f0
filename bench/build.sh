#!/usr/bin/env bash
# Benchmark of `melange2 build` (release binary) on examples/hello against the daemon of
# BUILDKIT_HOST (run it through `make bench` or scripts/with-buildkit.sh). Prints the median
# of 5 runs for:
#   cold   - the daemon's build cache pruned before each run (buildctl prune --all; --force)
#   cached - nothing changed, rebuilt with --force: every step cached (target <= 0.5 s)
#   no-op  - nothing changed: up to date, BuildKit not contacted
#   change - only the last step changed
# Needs the demo repository (.state/demo/repo); it is created when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p melange2 >&2
bin=target/release/melange2
demo=.state/demo
[ -n "${BUILDKIT_HOST:-}" ] || { echo "bench/build.sh: BUILDKIT_HOST is not set" >&2; exit 2; }
[ -f "$demo/repo/$(uname -m)/APKINDEX.tar.gz" ] || { scripts/deps.sh >&2 && MELANGE2_BIN=$bin scripts/demo.sh >/dev/null; }
buildctl=$(command -v buildctl || echo "${MELANGE2_TOOLS_DIR:-$HOME/.cache/melange2/tools}/buildkit-v0.32.2/bin/buildctl")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp examples/hello/melange.yaml "$work/hello.yaml"

run() { # recipe, extra flags → seconds
  local t0 t1 recipe=$1
  shift
  t0=$(date +%s.%N)
  "$bin" build "$recipe" "$@" -r "$demo/repo" -k "$demo/melange.rsa.pub" --signing-key "$demo/melange.rsa" \
    --out-dir "$work/out" --apk-cache-dir "$work/apk-cache" --progress quiet >/dev/null 2>"$work/err" ||
    { cat "$work/err" >&2; exit 1; }
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }'
}
median() { sort -n | sed -n 3p; }

cold=$(for i in 1 2 3 4 5; do "$buildctl" --addr "$BUILDKIT_HOST" prune --all >/dev/null; run "$work/hello.yaml" --force; done | median)
run "$work/hello.yaml" >/dev/null
warm=$(for i in 1 2 3 4 5; do run "$work/hello.yaml" --force; done | median)
noop=$(for i in 1 2 3 4 5; do run "$work/hello.yaml"; done | median)
change=$(for i in 1 2 3 4 5; do
  sed "s|echo \"hello \${{package.version}}\"|echo \"hello \${{package.version}} run $i $$\"|" \
    examples/hello/melange.yaml >"$work/hello.yaml"
  run "$work/hello.yaml"; done | median)
printf 'build examples/hello (median of 5, load %s): cold %.2fs, all cached (--force) %.2fs (target <= 0.5s), up-to-date no-op %.3fs, last step changed %.2fs\n' \
  "$(cut -d' ' -f1 /proc/loadavg)" "$cold" "$warm" "$noop" "$change"
