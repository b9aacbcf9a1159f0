#!/usr/bin/env bash
# Install, start and stop a local buildkitd for melange2 (development, demo and CI).
#
#   scripts/buildkit.sh install        install runc (apt) and buildkitd/buildctl (pinned, built with go)
#   scripts/buildkit.sh start          install if needed, start buildkitd, wait until it answers,
#                                      print the address (unix://…) on stdout
#   scripts/buildkit.sh stop           stop the daemon started by `start` (by pid)
#   scripts/buildkit.sh status         print the address if the daemon answers, exit 1 otherwise
#   scripts/buildkit.sh addr           print the address `start` uses
#   scripts/buildkit.sh env            print shell exports for the TLS listener (tests use it)
#   scripts/buildkit.sh pid            print the daemon's pid if it runs, exit 1 otherwise
#
# Besides the unix socket, the daemon listens on tcp://127.0.0.1:$MELANGE2_BUILDKIT_TCP_PORT
# (default 21234) with mutual TLS, using a throwaway CA made with openssl in the state dir.
#
# Named extra daemons (for tests of several daemons), next to the default one:
#   scripts/buildkit.sh start|stop|status|addr|pid NAME
# Each has its own state dir ($MELANGE2_BUILDKIT_STATE-NAME), --root, unix socket, OTEL socket
# and runc state dir, and no TCP listener unless MELANGE2_BUILDKIT_TLS_LISTEN=tcp://HOST:PORT
# is set (mutual TLS with ca.pem, server.pem and server-key.pem from $MELANGE2_BUILDKIT_TLS_CERTS,
# which the caller makes). `stop NAME` stops the daemon and every process it started (runc,
# build containers) and waits until they are gone.
#
# Every step is idempotent. Environment:
#   MELANGE2_BUILDKIT_STATE  state dir (default: $XDG_STATE_HOME/melange2/buildkitd)
#   MELANGE2_TOOLS_DIR       where pinned tools are installed (default: $XDG_CACHE_HOME/melange2/tools)
set -euo pipefail

cmd=${1:-}
name=${2:-}

BUILDKIT_VERSION=v0.32.2
BUILDKIT_MODULE=github.com/moby/buildkit

state_dir="${MELANGE2_BUILDKIT_STATE:-${XDG_STATE_HOME:-$HOME/.local/state}/melange2/buildkitd}"
if [ -n "$name" ]; then
  [[ "$name" =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] ||
    { printf 'buildkit.sh: error: invalid daemon name %q (letters, digits, ".", "_" and "-")\n' "$name" >&2; exit 1; }
  state_dir="$state_dir-$name"
fi
tools_dir="${MELANGE2_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/melange2/tools}/buildkit-${BUILDKIT_VERSION}"
sock="$state_dir/buildkitd.sock"
addr="unix://$sock"
pidfile="$state_dir/buildkitd.pid"
tcp_port="${MELANGE2_BUILDKIT_TCP_PORT:-21234}"
certs="$state_dir/certs"
logfile="$state_dir/buildkitd.log"

log() { printf 'buildkit.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    die "need root for: $*"; fi
}

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "apt-get not found; install ${missing[*]} by hand"
  log "installing ${missing[*]} with apt-get"
  as_root apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >&2
}

# Resolve a binary: PATH first, then our pinned tool dir.
find_bin() {
  local name=$1
  if [ -x "$tools_dir/bin/$name" ]; then echo "$tools_dir/bin/$name"; return 0; fi
  command -v "$name" 2>/dev/null
}

install_buildkit() {
  apt_install runc
  local need=()
  for b in buildkitd buildctl; do
    find_bin "$b" >/dev/null || need+=("$b")
  done
  [ ${#need[@]} -eq 0 ] && return 0
  command -v go >/dev/null || die "go is required to install ${need[*]} ${BUILDKIT_VERSION}"
  # `go install module@version` refuses BuildKit's go.mod (it has exclude directives), so build
  # from the downloaded module source as the main module instead.
  log "downloading ${BUILDKIT_MODULE}@${BUILDKIT_VERSION}"
  local src
  src=$(go mod download -json "${BUILDKIT_MODULE}@${BUILDKIT_VERSION}" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -d "$src" ] || die "go mod download did not give a source dir for ${BUILDKIT_MODULE}"
  mkdir -p "$tools_dir/bin"
  for b in "${need[@]}"; do
    log "building $b ${BUILDKIT_VERSION} into $tools_dir/bin (takes a few minutes once)"
    (cd "$src" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath \
      -ldflags "-X ${BUILDKIT_MODULE}/version.Version=${BUILDKIT_VERSION}" \
      -o "$tools_dir/bin/$b.tmp" "./cmd/$b") >&2
    mv "$tools_dir/bin/$b.tmp" "$tools_dir/bin/$b"
  done
}

# A CA, a server certificate for 127.0.0.1/localhost and a client certificate (mTLS).
make_certs() {
  [ -f "$certs/client-key.pem" ] && return 0
  command -v openssl >/dev/null || apt_install openssl
  mkdir -p "$certs"
  local o=(-days 3650 -sha256)
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$certs/ca-key.pem" -out "$certs/ca.pem" \
    "${o[@]}" -subj "/CN=melange2 test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>/dev/null
  local who
  for who in server client; do
    local ext
    if [ "$who" = server ]; then
      ext="subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
    else
      ext="extendedKeyUsage=clientAuth"
    fi
    openssl req -newkey rsa:2048 -nodes -keyout "$certs/$who-key.pem" -out "$certs/$who.csr" \
      -subj "/CN=melange2 test $who" 2>/dev/null
    printf '%s\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n' \
      "$ext" >"$certs/$who.ext"
    openssl x509 -req -in "$certs/$who.csr" -CA "$certs/ca.pem" -CAkey "$certs/ca-key.pem" \
      -CAcreateserial -out "$certs/$who.pem" "${o[@]}" -extfile "$certs/$who.ext" 2>/dev/null
  done
}

answers() {
  local ctl
  ctl=$(find_bin buildctl) || return 1
  timeout 5 "$ctl" --addr "$addr" debug workers >/dev/null 2>&1
}

start() {
  install_buildkit
  if answers; then echo "$addr"; return 0; fi
  [ "$(id -u)" -eq 0 ] || die "buildkitd with the runc worker must run as root"
  mkdir -p "$state_dir"
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    log "buildkitd (pid $(cat "$pidfile")) is running but does not answer yet"
  else
    rm -f "$sock"
    local bkd
    bkd=$(find_bin buildkitd) || die "buildkitd not installed"
    log "starting $bkd on $addr (log: $logfile)"
    make_certs
    setsid "$bkd" --root "$state_dir/root" --addr "$addr" \
      --addr "tcp://127.0.0.1:$tcp_port" \
      --tlscacert "$certs/ca.pem" --tlscert "$certs/server.pem" --tlskey "$certs/server-key.pem" \
      --oci-worker=true --containerd-worker=false >"$logfile" 2>&1 </dev/null &
    echo $! >"$pidfile"
  fi
  for _ in $(seq 1 120); do
    if answers; then echo "$addr"; return 0; fi
    kill -0 "$(cat "$pidfile")" 2>/dev/null || { tail -20 "$logfile" >&2; die "buildkitd exited"; }
    sleep 0.5
  done
  tail -20 "$logfile" >&2
  die "buildkitd did not answer on $addr within 60 s"
}

stop() {
  [ -f "$pidfile" ] || { log "no pid file in $state_dir: nothing to stop"; return 0; }
  local pid
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    log "stopped buildkitd (pid $pid)"
  fi
  rm -f "$pidfile"
}

# The daemon's pid if it runs (a stale pid file does not count).
daemon_pid() {
  [ -f "$pidfile" ] || return 1
  local pid
  pid=$(cat "$pidfile")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "--root $state_dir/root " || return 1
  echo "$pid"
}

# Every process below $1, deepest last.
descendants() {
  local c
  for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
    echo "$c"
    descendants "$c"
  done
}

# A named daemon: its own --root, unix socket, OTEL socket and runc state, no TCP listener.
# BuildKit's runc executor calls plain `runc`, whose state dir (/run/runc) would be shared by
# every daemon; a small wrapper gives this daemon a runc root of its own.
start_named() {
  install_buildkit
  if answers; then echo "$addr"; return 0; fi
  [ "$(id -u)" -eq 0 ] || die "buildkitd with the runc worker must run as root"
  # sun_path holds 108 bytes.
  [ ${#sock} -lt 100 ] || die "socket path too long for a unix socket: $sock (move MELANGE2_BUILDKIT_STATE)"
  mkdir -p "$state_dir/runc"
  local pid
  if pid=$(daemon_pid); then
    log "buildkitd $name (pid $pid) is running but does not answer yet"
  else
    rm -f "$sock" "$state_dir/otel-grpc.sock"
    local bkd runc
    bkd=$(find_bin buildkitd) || die "buildkitd not installed"
    runc=$(command -v runc) || die "runc not installed"
    printf '#!/bin/sh\nexec %q --root %q "$@"\n' "$runc" "$state_dir/runc" >"$state_dir/runc-wrapper"
    chmod 755 "$state_dir/runc-wrapper"
    local tls=()
    if [ -n "${MELANGE2_BUILDKIT_TLS_LISTEN:-}" ]; then
      local c="${MELANGE2_BUILDKIT_TLS_CERTS:?MELANGE2_BUILDKIT_TLS_CERTS names the certificates}"
      for f in ca.pem server.pem server-key.pem; do
        [ -f "$c/$f" ] || die "MELANGE2_BUILDKIT_TLS_CERTS: no $f in $c"
      done
      tls=(--addr "$MELANGE2_BUILDKIT_TLS_LISTEN" --tlscacert "$c/ca.pem"
        --tlscert "$c/server.pem" --tlskey "$c/server-key.pem")
    fi
    log "starting buildkitd $name on $addr ${tls[*]:+and ${tls[1]} }(log: $logfile)"
    setsid "$bkd" --root "$state_dir/root" --addr "$addr" "${tls[@]}" \
      --otel-socket-path "$state_dir/otel-grpc.sock" \
      --oci-worker=true --containerd-worker=false \
      --oci-worker-binary "$state_dir/runc-wrapper" >"$logfile" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$pidfile"
  fi
  for _ in $(seq 1 120); do
    if answers; then echo "$addr"; return 0; fi
    kill -0 "$pid" 2>/dev/null || { tail -20 "$logfile" >&2; die "buildkitd $name exited"; }
    sleep 0.5
  done
  tail -20 "$logfile" >&2
  die "buildkitd $name did not answer on $addr within 60 s"
}

stop_named() {
  local pid
  if ! pid=$(daemon_pid); then
    rm -f "$pidfile"
    log "buildkitd $name is not running: nothing to stop"
    return 0
  fi
  # Collect runc and the build containers before the daemon goes: once it is gone they are
  # reparented and can no longer be found from it.
  local kids runc id
  kids=$(descendants "$pid")
  runc=$(command -v runc)
  # SIGTERM makes buildkitd refuse new work, but it waits for running builds. Kill their
  # containers, so that the builds fail, their clients hang up and the daemon exits cleanly.
  kill "$pid"
  for id in $(ls "$state_dir/runc" 2>/dev/null); do
    "$runc" --root "$state_dir/runc" kill "$id" KILL 2>/dev/null || true
  done
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  if kill -0 "$pid" 2>/dev/null; then
    log "buildkitd $name (pid $pid) did not stop within 10 s: killing it"
    kill -9 "$pid"
  fi
  local k left
  for k in $kids; do kill -9 "$k" 2>/dev/null || true; done
  for _ in $(seq 1 40); do
    left=
    for k in $pid $kids; do kill -0 "$k" 2>/dev/null && left="$left $k"; done
    [ -z "$left" ] && break
    sleep 0.25
  done
  [ -z "$left" ] || die "processes of buildkitd $name still alive:$left"
  # What a daemon killed hard leaves behind: runc state (and its cgroups), overlay mounts.
  for id in $(ls "$state_dir/runc" 2>/dev/null); do
    "$runc" --root "$state_dir/runc" delete --force "$id" 2>/dev/null || true
  done
  local m
  awk -v root="$state_dir/" 'index($5, root) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -f "$pidfile" "$sock" "$state_dir/otel-grpc.sock"
  log "stopped buildkitd $name (pid $pid)"
}

if [ -n "$name" ]; then
  case "$cmd" in
    start) start_named ;;
    stop) stop_named ;;
    status) answers && echo "$addr" ;;
    addr) echo "$addr" ;;
    pid) daemon_pid ;;
    *) die "usage: $0 start|stop|status|addr|pid NAME" ;;
  esac
  exit
fi

case "$cmd" in
  install) install_buildkit ;;
  start) start ;;
  stop) stop ;;
  status) answers && echo "$addr" ;;
  addr) echo "$addr" ;;
  pid) daemon_pid ;;
  env)
    echo "export MELANGE2_BUILDKIT_TLS_ADDR=tcp://127.0.0.1:$tcp_port"
    echo "export MELANGE2_BUILDKIT_TLS_DIR=$certs"
    ;;
  *) sed -n '2,24p' "$0" >&2; exit 2 ;;
esac
