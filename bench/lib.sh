# Shared by the bench/*.sh scripts (sourced): timing, medians, the machine's load, and
# generated trees of recipes. Expects $work (a scratch dir) and $NONCE to be set.
load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "machine: $(nproc) cores, load $(load)"

seconds() { # command... → wall seconds
  local t0 t1
  t0=$(date +%s%N)
  "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
  t1=$(date +%s%N)
  echo $(((t1 - t0) / 1000)) | awk '{ printf "%.4f\n", $1 / 1e6 }'
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

# A recipe: name, sleep seconds, needs...
recipe() {
  local name=$1 sleep=$2 n
  shift 2
  printf 'package:\n  name: %s\n  version: 1.0.0\n  epoch: 0\n  description: %s\n' "$name" "$name"
  printf '  copyright:\n    - license: MIT\nenvironment:\n  contents:\n    packages:\n      - busybox\n'
  for n in "$@"; do printf '      - %s\n' "$n"; done
  printf 'pipeline:\n  - name: work\n    runs: |\n'
  # a fresh sleep graph must not come from BuildKit's cache
  [ "$sleep" = 0 ] || printf '      : run %s\n      sleep %s\n' "$NONCE" "$sleep"
  printf '      mkdir -p ${{targets.destdir}}/usr/share/%s\n' "$name"
  printf '      echo %s > ${{targets.destdir}}/usr/share/%s/id\n' "$name" "$name"
}

# Deterministic pseudo-random needs: node i needs up to two of the nodes before it.
gen_tree() { # dir, count, sleep mode (0: no sleep; 1: 2..6 s) → writes DIR and DIR.deps
  local dir=$1 count=$2 mode=$3 seed=7 i
  mkdir -p "$dir"
  : >"$dir.deps"
  for i in $(seq 1 "$count"); do
    local needs=() s=0 k
    for k in 1 2; do
      seed=$(((seed * 1103515245 + 12345) % 2147483648))
      if [ "$i" -gt 1 ] && [ $((seed % 3)) -ne 0 ]; then
        needs+=("p$(((seed / 7) % (i - 1) + 1))")
      fi
    done
    [ "$mode" = 0 ] || s=$((2 + (i * 7) % 5))
    mapfile -t needs < <(printf '%s\n' "${needs[@]}" | sort -u | sed '/^$/d')
    recipe "p$i" "$s" "${needs[@]}" >"$dir/p$i.yaml"
    echo "p$i $s ${needs[*]}" >>"$dir.deps"
  done
}


# The longest chain of sleeps of a generated tree (its .deps file).
critical_path() {
  awk '{ best = 0; for (i = 3; i <= NF; i++) if (cp[$i] > best) best = cp[$i];
    cp[$1] = best + $2; if (cp[$1] > max) max = cp[$1] } END { print max }' "$1"
}
