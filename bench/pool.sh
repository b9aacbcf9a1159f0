#!/usr/bin/env bash
# Benchmarks of a pool of daemons (release binary). Starts its own daemons
# (scripts/buildkit.sh start NAME, fresh state each) and a registry (scripts/registry.sh),
# stops them at the end, and prints with the machine's load:
#   1. the generated 30-recipe sleep graph on 1, 2 and 3 daemons (--jobs 2 per daemon):
#      wall time, speed-up over one daemon, ratio to the critical path (target <= 1.15 with 3);
#   2. cold builds on a fresh daemon without and with --cache-from a registry another daemon
#      filled: the demo recipe (examples/hello) and a recipe whose step works for 8 s
#      (target >= 5x faster with the cache).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p melange2 >&2
bin=target/release/melange2
demo=.state/demo
[ -f "$demo/repo/$(uname -m)/APKINDEX.tar.gz" ] || scripts/with-buildkit.sh scripts/demo.sh >/dev/null
work=$(mktemp -d)
NONCE=$(date +%s%N)
export MELANGE2_BUILDKIT_STATE="$work/bk" MELANGE2_REGISTRY_STATE="$work/registry"
daemons=()
cleanup() {
  for d in "${daemons[@]}"; do scripts/buildkit.sh stop "$d" >/dev/null 2>&1 || true; done
  scripts/registry.sh stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
source bench/lib.sh
start_daemon() { # name → sets $addr (no subshell, so cleanup knows the daemon)
  daemons+=("$1")
  addr=$(scripts/buildkit.sh start "$1" 2>/dev/null)
}

build() { # out-dir, daemons (comma-separated), then build args
  local out=$1 addrs=$2
  shift 2
  env -u BUILDKIT_HOST "$bin" build "$@" -r "$demo/repo" -k "$demo/melange.rsa.pub" \
    --signing-key "$demo/melange.rsa" --out-dir "$out" --apk-cache-dir "$work/apk-cache" \
    --progress quiet --buildkit-addr "$addrs"
}

# 1. the sleep graph on 1, 2, 3 daemons
gen_tree "$work/sleep" 30 1
critical=$(critical_path "$work/sleep.deps")
addrs=""
one=""
for n in 1 2 3; do
  start_daemon "bench-$n"
  addrs="${addrs:+$addrs,}$addr"
  NONCE="$NONCE-$n" gen_tree "$work/sleep-$n" 30 1
  echo "   (sleep graph on $n daemon(s); load $(load))" >&2
  wall=$(seconds build "$work/out-$n" "$addrs" "$work/sleep-$n" --jobs 2)
  one=${one:-$wall}
  printf '1. sleep graph, %d daemon(s), --jobs 2 each: wall %.1f s, speed-up %.2fx, critical path %d s, ratio %.3f%s\n' \
    "$n" "$wall" "$(awk -v a="$one" -v b="$wall" 'BEGIN { print a / b }')" "$critical" \
    "$(awk -v w="$wall" -v c="$critical" 'BEGIN { print w / c }')" \
    "$([ "$n" = 3 ] && echo ' (target <= 1.15)' || true)"
done

# 2. cold builds on fresh daemons, without and with the registry cache
reg=$(scripts/registry.sh start 2>/dev/null)
cache="type=registry,ref=$reg/melange2-bench:$NONCE,registry.insecure=true"
mkdir -p "$work/work8"
recipe work8 8 >"$work/work8/work8.yaml"
for what in examples/hello/melange.yaml "$work/work8/work8.yaml"; do
  name=$(basename "$(dirname "$what")")
  start_daemon "fill-$name"
  build "$work/fill-$name" "$addr" "$what" --cache-to "$cache,mode=max" >/dev/null 2>&1
  start_daemon "cold-$name"
  echo "   (cold $name; load $(load))" >&2
  cold=$(seconds build "$work/cold-$name" "$addr" "$what")
  start_daemon "warm-$name"
  warm=$(seconds build "$work/warm-$name" "$addr" "$what" --cache-from "$cache")
  printf '2. %s on a fresh daemon: cold %.2f s, with --cache-from %.2f s: %.1fx faster (target >= 5x)\n' \
    "$name" "$cold" "$warm" "$(awk -v a="$cold" -v b="$warm" 'BEGIN { print a / b }')"
done
echo "load at the end: $(load)"
