#!/usr/bin/env bash
# Make (once) a Debian root filesystem with a C toolchain for melange2's real-toolchain test
# tier (docs/toolchain.md) and print its path on stdout.
#
#   scripts/toolchain-rootfs.sh          make the rootfs if it is not cached yet, print its path
#   scripts/toolchain-rootfs.sh path     print the path the rootfs has (or would have), make nothing
#
# The rootfs is made with debootstrap (installed with apt-get when missing) from the Debian
# mirror and suite this machine's apt sources use (read at run time from /etc/apt/sources.list
# and /etc/apt/sources.list.d/*), with the packages below. It is cached under
# $MELANGE2_TOOLCHAIN_CACHE (default: $XDG_CACHE_HOME/melange2/toolchain, i.e.
# ~/.cache/melange2/toolchain) in a directory named by the suite, the architecture and a digest
# of the package list, so a changed list makes a new rootfs. It is made in a temporary
# directory next to its final place and renamed into place when complete, under a lock
# (flock), so two runs racing make it once and nobody sees half a rootfs.
#
# melange2's built-in pipelines declare `needs` by their APK names (make, binutils, cmake, …).
# The rootfs records the Debian packages that provide them in lib/apk/db/installed, so a
# bootstrap build counts them as present instead of asking a repository for them; it records
# the so:, cmd: and pc: names the rootfs provides the same way.
#
# Environment: MELANGE2_TOOLCHAIN_CACHE (cache dir), MELANGE2_TOOLCHAIN_SUITE (Debian suite,
# default: the one of /etc/os-release), MELANGE2_TOOLCHAIN_MIRROR (mirror URL, default: from the
# apt sources).
set -euo pipefail

# Bump when the way the rootfs is made changes (part of the cache key).
FORMAT=3
# man-db: SCA makes every -doc package (split/manpages) depend on it, so installing one in a
# test environment needs it.
PACKAGES=(build-essential autoconf automake libtool pkg-config cmake meson ninja-build file wget man-db)
# APK name of a pipeline's need → the Debian package of the rootfs that provides it.
APK_PROVIDED=(
  autoconf:autoconf automake:automake libtool:libtool make:make binutils:binutils
  gcc:gcc build-base:build-essential pkgconf:pkg-config cmake:cmake ninja:ninja-build
  meson:meson file:file wget:wget busybox:coreutils scanelf:binutils man-db:man-db
)

die() { printf 'toolchain-rootfs.sh: error: %s\n' "$*" >&2; exit 1; }
log() { printf 'toolchain-rootfs.sh: %s\n' "$*" >&2; }

cache="${MELANGE2_TOOLCHAIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/melange2/toolchain}"

suite=${MELANGE2_TOOLCHAIN_SUITE:-}
if [ -z "$suite" ]; then
  # shellcheck disable=SC1091 # the machine's own release file
  suite=$(. /etc/os-release && printf '%s' "${VERSION_CODENAME:-}")
  [ -n "$suite" ] || die "cannot tell the Debian suite from /etc/os-release; set MELANGE2_TOOLCHAIN_SUITE"
fi
arch=$(dpkg --print-architecture 2>/dev/null) || die "dpkg is missing: this script needs a Debian machine"

key=$(printf '%s\n' "format=$FORMAT" "suite=$suite" "arch=$arch" \
  "$(printf '%s\n' "${PACKAGES[@]}" | LC_ALL=C sort)" "$(printf '%s\n' "${APK_PROVIDED[@]}")" |
  sha256sum | cut -c1-16)
dest="$cache/debian-$suite-$arch-$key"

if [ "${1:-}" = path ]; then
  printf '%s\n' "$dest"
  exit 0
fi
[ $# -eq 0 ] || die "unknown argument: $1 (usage: toolchain-rootfs.sh [path])"

ready() { [ -f "$dest/.melange2-toolchain-complete" ]; }
if ready; then
  printf '%s\n' "$dest"
  exit 0
fi

# The mirror of the suite, from the machine's apt sources (deb822 .sources files and one-line
# .list files), unless given.
mirror_from_apt() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    # Stanzas are separated by blank lines; keep the URI of a `deb` stanza listing the suite.
    awk -v suite="$suite" '
      BEGIN { RS = ""; FS = "\n" }
      {
        types = ""; uris = ""; suites = ""; enabled = "yes"
        for (i = 1; i <= NF; i++) {
          line = $i
          if (line ~ /^[ \t]*#/) continue
          if (line ~ /^Types:/)   { sub(/^Types:[ \t]*/, "", line); types = line }
          if (line ~ /^URIs:/)    { sub(/^URIs:[ \t]*/, "", line); uris = line }
          if (line ~ /^Suites:/)  { sub(/^Suites:[ \t]*/, "", line); suites = " " line " " }
          if (line ~ /^Enabled:/) { sub(/^Enabled:[ \t]*/, "", line); enabled = line }
        }
        if (enabled != "no" && (" " types " ") ~ / deb / && index(suites, " " suite " ") > 0) {
          split(uris, u, /[ \t]+/); print u[1]; exit
        }
      }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    # deb [options] URI SUITE COMPONENTS…
    awk -v suite="$suite" '
      $1 == "deb" {
        i = 2
        if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
        if ($(i + 1) == suite) { print $i; exit }
      }' "$f"
  done
}

# so:, cmd: and pc: names of the rootfs in $tmp, one a line.
rootfs_provides() {
  chroot "$tmp" /bin/sh -c '
    for d in /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/lib /usr/lib64; do
      [ -d "$d" ] || continue
      for f in "$d"/*.so "$d"/*.so.*; do
        [ -f "$f" ] && [ ! -L "$f" ] || continue
        soname=$(objdump -p "$f" 2>/dev/null | awk "\$1 == \"SONAME\" { print \$2 }")
        [ -n "$soname" ] || continue
        ver=${soname#*.so.}
        case "$soname" in *.so.*) ;; *) ver=0 ;; esac
        case "$ver" in *[!0-9.]*) ver=0 ;; esac
        echo "so:$soname=$ver"
      done
    done
    for d in /usr/bin /usr/sbin; do
      for f in "$d"/*; do
        [ -f "$f" ] && [ -x "$f" ] && echo "cmd:${f##*/}=0-r0"
      done
    done
    for d in /usr/lib/x86_64-linux-gnu/pkgconfig /usr/lib/aarch64-linux-gnu/pkgconfig /usr/lib/pkgconfig /usr/share/pkgconfig; do
      for f in "$d"/*.pc; do
        [ -f "$f" ] && { n=${f##*/}; echo "pc:${n%.pc}=0-r0"; }
      done
    done
  '
}

mkdir -p "$cache"
exec 9>"$cache/.lock-$key"
flock -n 9 || { log "another run is making it, waiting for the lock $cache/.lock-$key"; flock 9; }
if ready; then
  printf '%s\n' "$dest"
  exit 0
fi

mirror=${MELANGE2_TOOLCHAIN_MIRROR:-$(mirror_from_apt | head -n1)}
[ -n "$mirror" ] || die "no Debian mirror for suite $suite in /etc/apt/sources.list{,.d/*}; set MELANGE2_TOOLCHAIN_MIRROR"

if ! command -v debootstrap >/dev/null; then
  log "installing debootstrap"
  if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo); fi
  "${sudo[@]}" apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq debootstrap >&2
fi
[ "$(id -u)" -eq 0 ] || die "debootstrap needs root"

# Remove a temporary tree, unmounting first what debootstrap mounted in it (proc, sys) when it
# was interrupted.
remove_tree() {
  local m
  awk -v d="$1/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do
    umount -l "$m" || true
  done
  rm -rf "$1" "$1.log"
}

# Leftovers of an interrupted run (we hold the lock, so nobody else is making one).
for old in "$cache/.tmp-$key".*; do
  [ -d "$old" ] && remove_tree "$old"
  rm -f "$old"
done
tmp=$(mktemp -d "$cache/.tmp-$key.XXXXXX")
trap 'remove_tree "$tmp"' EXIT
chmod 755 "$tmp" # the rootfs's / (mktemp makes it 0700)
log "making $dest from $mirror ($suite, $arch): ${PACKAGES[*]} (takes minutes)"
include=$(IFS=,; printf '%s' "${PACKAGES[*]}")
if ! debootstrap --variant=minbase --arch="$arch" --include="$include" "$suite" "$tmp" "$mirror" >"$tmp.log" 2>&1; then
  tail -n 30 "$tmp.log" >&2
  rm -f "$tmp.log"
  die "debootstrap failed (log above)"
fi
rm -f "$tmp.log"

# What BuildKit provides itself, or what only makes the tree bigger.
find "$tmp/dev" -mindepth 1 -delete
rm -rf "$tmp/var/cache/apt/archives/"*.deb "$tmp/var/lib/apt/lists/"* "$tmp/var/log/"*
rm -rf "$tmp/usr/share/doc/"* "$tmp/usr/share/locale/"* "$tmp/usr/share/info/"* "$tmp/usr/share/man/"*

# The APK view of the rootfs (lib/apk/db/installed): one record per APK name the built-in
# pipelines need, and one record `debian-rootfs` providing the `so:` (shared objects of the
# library directories), `cmd:` (programs) and `pc:` (pkg-config modules) names the rootfs has,
# so the dependencies SCA finds on built packages count as present in tests.
apk_arch=$(uname -m)
{
  for entry in "${APK_PROVIDED[@]}"; do
    name=${entry%%:*} deb=${entry#*:}
    chroot "$tmp" dpkg-query -W -f '${Status}' "$deb" 2>/dev/null | grep -q ' installed$' ||
      die "$deb (for the APK name $name) is not installed in the rootfs"
    printf 'P:%s\nV:0-r0\nA:%s\nT:provided by the Debian package %s\n\n' "$name" "$apk_arch" "$deb"
  done
  printf 'P:debian-rootfs\nV:0-r0\nA:%s\nT:the Debian %s root filesystem\np:%s\n\n' \
    "$apk_arch" "$suite" "$(rootfs_provides | grep -E '^(so|cmd|pc):[A-Za-z0-9._+-]+=' | LC_ALL=C sort -u | tr '\n' ' ' | sed 's/ $//')"
} >"$tmp/installed.new"
mkdir -p "$tmp/usr/lib/apk/db"
mv "$tmp/installed.new" "$tmp/usr/lib/apk/db/installed"

touch "$tmp/.melange2-toolchain-complete"
rm -rf "$dest"
mv -T "$tmp" "$dest"
trap - EXIT
log "ready: $dest ($(du -sh "$dest" | cut -f1))"
printf '%s\n' "$dest"
