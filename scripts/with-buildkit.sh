#!/usr/bin/env bash
# Run a command with BUILDKIT_HOST pointing at a live buildkitd.
# - BUILDKIT_HOST already set: use that daemon as is.
# - otherwise: use the local daemon of scripts/buildkit.sh, starting it if needed; a daemon
#   started here is stopped again when the command ends.
# Exports MELANGE2_OWN_DAEMON=1 when the daemon is the one scripts/buildkit.sh manages (tests
# that need its TLS listener check this).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

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
