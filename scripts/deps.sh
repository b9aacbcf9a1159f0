#!/usr/bin/env bash
# Install what melange2's build, tests and demo need on a fresh Debian machine (idempotent):
# Debian packages (runc, busybox-static, openssl, gzip, tar, gcc and libc6-dev for ELF fixtures,
# docker-registry for the cache tests' registry) and the pinned buildkitd/buildctl.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

need=()
for pkg in runc busybox-static openssl gzip tar ca-certificates gcc libc6-dev docker-registry; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "deps.sh: installing ${need[*]}" >&2
  if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo); fi
  "${sudo[@]}" apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${need[@]}" >&2
fi
command -v cargo >/dev/null || { echo "deps.sh: cargo (Rust) is required: https://rustup.rs" >&2; exit 1; }
"$here/buildkit.sh" install
