#!/usr/bin/env bash
# Run a command with BUILDKIT_HOST pointing at a live buildkitd.
# - BUILDKIT_HOST already set: use that daemon as is.
# - otherwise: use the local daemon of scripts/buildkit.sh, starting it if needed; a daemon
#   started here is stopped again when the command ends.
# Exports MELANGE2_OWN_DAEMON=1 when the daemon is the one scripts/buildkit.sh manages, and
# MELANGE2_BUILDKIT_SCRIPT/MELANGE2_REGISTRY_SCRIPT
# (the paths of scripts/buildkit.sh and scripts/registry.sh, for tests that start extra daemons
# or a registry of their own).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export MELANGE2_BUILDKIT_SCRIPT="${MELANGE2_BUILDKIT_SCRIPT:-$here/buildkit.sh}"
export MELANGE2_REGISTRY_SCRIPT="${MELANGE2_REGISTRY_SCRIPT:-$here/registry.sh}"

if [ -n "${BUILDKIT_HOST:-}" ]; then
  echo "with-buildkit: using BUILDKIT_HOST=$BUILDKIT_HOST" >&2
  exec "$@"
fi

started=0
if ! addr=$("$here/buildkit.sh" status 2>/dev/null); then
  addr=$("$here/buildkit.sh" start)
  started=1
fi
export BUILDKIT_HOST="$addr" MELANGE2_OWN_DAEMON=1
eval "$("$here/buildkit.sh" env)"
echo "with-buildkit: BUILDKIT_HOST=$BUILDKIT_HOST" >&2
rc=0
"$@" || rc=$?
if [ "$started" = 1 ]; then "$here/buildkit.sh" stop; fi
exit $rc
