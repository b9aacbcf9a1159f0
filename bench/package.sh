#!/usr/bin/env bash
# Benchmark of packaging (release binary) against the daemon of BUILDKIT_HOST (issue #15).
# Makes two trees:
#   real    - copies of /usr/lib/<multiarch> and /usr/share/doc (as large as this machine's;
#             about 0.8 GB here, 1.1 GB on the machine of the issue)
#   entropy - 400 MB, generated deterministically: six 40 MB base64 text files, two 30 MB
#             random files, 2,000 small files
# For each: a recipe copying the tree from its source dir into ${{targets.destdir}} is built
# once (the step runs), then re-packaged RUNS times (default 3) with --force (the step cached).
# Prints, with the machine's load, the median of: the packaging step's wall time (from the
# first byte of BuildKit's export, right after the solve, to the signed index: the
# `package NAME` client step of --progress rawjson), input MB/s, output size and ratio, and the
# client's peak RSS (/usr/bin/time -v). Usage: bench/package.sh [real|entropy]...
# MELANGE2_BIN=PATH benchmarks that binary instead of building the release one (before/after).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${MELANGE2_BIN:-}" ]; then
  bin=$(realpath "$MELANGE2_BIN")
else
  cargo build --release --locked -p melange2 >&2
  bin=$PWD/target/release/melange2
fi
demo=.state/demo
[ -n "${BUILDKIT_HOST:-}" ] || { echo "bench/package.sh: BUILDKIT_HOST is not set" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench/package.sh: needs GNU time at /usr/bin/time" >&2; exit 2; }
[ -f "$demo/repo/$(uname -m)/APKINDEX.tar.gz" ] || { scripts/deps.sh >&2 && MELANGE2_BIN=$bin scripts/demo.sh >/dev/null; }
runs=${RUNS:-3}
work=$(mktemp -d "${TMPDIR:-/tmp}/melange2-bench-package.XXXXXX")
trap 'rm -rf "$work"' EXIT
NONCE=$(date +%s%N)
source bench/lib.sh

# A deterministic byte stream of N bytes from SEED (AES-CTR over zeros).
stream() { # seed, bytes
  head -c "$2" /dev/zero |
    openssl enc -aes-128-ctr -nosalt -K "$(printf '%032x' "$1")" -iv 00000000000000000000000000000000
}

make_real() { # dir
  local multi
  multi=$(gcc -print-multiarch 2>/dev/null || echo "$(uname -m)-linux-gnu")
  mkdir -p "$1/usr/lib" "$1/usr/share"
  cp -a "/usr/lib/$multi" "$1/usr/lib/"
  cp -a /usr/share/doc "$1/usr/share/"
}

make_entropy() { # dir
  local i
  mkdir -p "$1/text" "$1/bin" "$1/small"
  for i in 1 2 3 4 5 6; do # 40 MiB of base64 lines (a truncated last line)
    stream "$i" 31048755 | base64 -w 76 >"$1/text/t$i.txt"
    truncate -s 41943040 "$1/text/t$i.txt"
  done
  for i in 1 2; do stream "$((10 + i))" 31457280 >"$1/bin/r$i.bin"; done
  stream 99 4096000 | split -a 4 -d -b 2048 - "$1/small/f"
}

recipe() { # name
  printf 'package:\n  name: %s\n  version: 1.0.0\n  epoch: 0\n  description: packaging benchmark\n' "$1"
  printf '  copyright:\n    - license: MIT\nenvironment:\n  contents:\n    packages:\n      - busybox\n'
  printf 'pipeline:\n  - runs: |\n      : %s\n      cp -a tree/. ${{targets.destdir}}/\n' "$NONCE"
}

build() { # name, then flags
  local name=$1
  shift
  "$bin" build "$work/$name/melange.yaml" --source-dir "$work/$name/src" "$@" \
    -r "$demo/repo" -k "$demo/melange.rsa.pub" --signing-key "$demo/melange.rsa" \
    --out-dir "$work/$name/out" --apk-cache-dir "$work/apk-cache" \
    --lint-warn "$lints"
}
# the copied system tree trips the linters melange2 requires by default: warnings only
lints=dev,setuidgid,tempdir,varempty,worldwrite,infodir,usrmerge,libtool/la-files

# The packaging step of a rawjson stream (stderr): seconds from the first byte of the export
# to the signed index, as the client step reports them.
pack_seconds() { # rawjson file
  jq -rR 'fromjson? | select(.event == "client-step" and .state == "done") | .duration' "$1" |
    awk '{ printf "%.3f\n", $1 }'
}

bench_tree() { # name
  local name=$1 dir="$work/$1" in_bytes i s rss out_bytes
  mkdir -p "$dir/src/tree"
  "make_$name" "$dir/src/tree"
  recipe "$name" >"$dir/melange.yaml"
  in_bytes=$(du -sb "$dir/src/tree" | cut -f1)
  build "$name" --progress quiet >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
  : >"$dir/runs"
  for i in $(seq 1 "$runs"); do
    MELANGE2_LOG=warn,melange2_package=debug /usr/bin/time -v -o "$dir/time" "$bin" build "$dir/melange.yaml" --force --source-dir "$dir/src" \
      -r "$demo/repo" -k "$demo/melange.rsa.pub" --signing-key "$demo/melange.rsa" \
      --out-dir "$dir/out" --apk-cache-dir "$work/apk-cache" --lint-warn "$lints" \
      --progress rawjson >/dev/null 2>"$dir/raw" || { cat "$dir/raw" >&2; exit 1; }
    s=$(pack_seconds "$dir/raw")
    rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$dir/time")
    echo "$s $rss" >>"$dir/runs"
  done
  out_bytes=$(stat -c %s "$dir/out/$(uname -m)/$name-1.0.0-r0.apk")
  s=$(cut -d' ' -f1 "$dir/runs" | median)
  rss=$(cut -d' ' -f2 "$dir/runs" | sort -n | tail -1)
  awk -v n="$name" -v s="$s" -v i="$in_bytes" -v o="$out_bytes" -v r="$rss" -v runs="$runs" -v l="$(load)" \
    'BEGIN { printf "package %-7s %7.1f MB in: packaging %.2fs (median of %d, load %s), %.0f MB/s, output %.1f MB (ratio %.3f), client peak RSS %.0f MB (max)\n",
      n, i / 1e6, s, runs, l, i / 1e6 / s, o / 1e6, o / i, r / 1024 }'
  # the phases of the last run (melange2_package's debug line)
  sed -n 's/.*packaging phases timings=Timings \(.*\)/  phases of the last run: \1/p' "$dir/raw" | tr -d '{}'
  rm -rf "$dir"
}

trees=("$@")
[ ${#trees[@]} -gt 0 ] || trees=(real entropy)
for t in "${trees[@]}"; do
  case $t in
    real | entropy) bench_tree "$t" ;;
    *) echo "bench/package.sh: unknown tree $t (real, entropy)" >&2; exit 2 ;;
  esac
done
