#!/usr/bin/env bash
# A local OCI registry (Debian's docker-registry, distribution 2.8) for BuildKit cache tests.
#
#   scripts/registry.sh install         apt-install docker-registry if it is missing
#   scripts/registry.sh start [NAME]    install if needed, start the registry, wait until /v2/
#                                       answers, print its address (127.0.0.1:PORT) on stdout
#   scripts/registry.sh stop [NAME]     stop it (by pid) and wait until it is gone
#   scripts/registry.sh status [NAME]   print the address if /v2/ answers, exit 1 otherwise
#   scripts/registry.sh addr [NAME]     print the address `start` uses (a port is picked and
#                                       recorded if none is yet)
#
# Without NAME the registry lives in $XDG_STATE_HOME/melange2/registry; with NAME in
# …/registry-NAME, so several can run at once. The state dir holds config.yml, the blobs
# (data/), registry.log, registry.pid and the port. The registry speaks plain HTTP on
# 127.0.0.1 only, without auth: BuildKit needs `registry.insecure=true` to use it.
#
# Every step is idempotent. Environment:
#   MELANGE2_REGISTRY_STATE  state dir (default: $XDG_STATE_HOME/melange2/registry; NAME is
#                            appended as -NAME)
#   MELANGE2_REGISTRY_PORT   a fixed port (default: a free port, picked once and kept)
set -euo pipefail

log() { printf 'registry.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

cmd=${1:-}
name=${2:-}
if [ -n "$name" ] && ! [[ "$name" =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]]; then
  die "invalid registry name ${name@Q} (letters, digits, '.', '_' and '-')"
fi

state_dir="${MELANGE2_REGISTRY_STATE:-${XDG_STATE_HOME:-$HOME/.local/state}/melange2/registry}"
[ -n "$name" ] && state_dir="$state_dir-$name"
config="$state_dir/config.yml"
pidfile="$state_dir/registry.pid"
portfile="$state_dir/port"
logfile="$state_dir/registry.log"
what="registry${name:+ $name}"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    die "need root for: $*"; fi
}

install_registry() {
  command -v docker-registry >/dev/null && return 0
  command -v apt-get >/dev/null || die "apt-get not found; install docker-registry (distribution 2.8) by hand"
  log "installing docker-registry with apt-get"
  as_root apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq docker-registry >&2
}

# Something accepts connections on 127.0.0.1:$1.
port_busy() { timeout 2 bash -c ": >/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# The first line of the answer to `GET $2` on 127.0.0.1:$1 (e.g. `HTTP/1.1 200 OK`).
http_status() {
  timeout 3 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "GET %s HTTP/1.0\r\nHost: 127.0.0.1:%s\r\n\r\n" "$2" "$1" >&3
    IFS= read -r line <&3 || exit 1
    printf "%s\n" "${line%$'"'"'\r'"'"'}"' _ "$1" "$2" 2>/dev/null
}

answers() {
  local port status
  [ -f "$portfile" ] || return 1
  port=$(cat "$portfile")
  status=$(http_status "$port" /v2/) || return 1
  # 200 without auth; 401 would be some other registry with auth on our port.
  [[ "$status" == HTTP/1.?" 200"* ]]
}

# The pid of our registry if it runs (a stale pid file or a reused pid does not count).
running_pid() {
  [ -f "$pidfile" ] || return 1
  local pid
  pid=$(cat "$pidfile")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "docker-registry serve $config" || return 1
  echo "$pid"
}

pick_port() {
  if [ -n "${MELANGE2_REGISTRY_PORT:-}" ]; then
    echo "$MELANGE2_REGISTRY_PORT"
    return 0
  fi
  local p
  for _ in $(seq 1 100); do
    # Below the kernel's ephemeral range, so outgoing connections do not take it.
    p=$((20000 + RANDOM % 12000))
    port_busy "$p" || { echo "$p"; return 0; }
  done
  die "no free port found"
}

ensure_port() {
  mkdir -p "$state_dir"
  if [ -n "${MELANGE2_REGISTRY_PORT:-}" ]; then
    echo "$MELANGE2_REGISTRY_PORT" >"$portfile"
  elif [ ! -s "$portfile" ]; then
    pick_port >"$portfile"
  fi
  cat "$portfile"
}

write_config() {
  local port=$1
  mkdir -p "$state_dir/data"
  cat >"$config" <<EOF
# Written by scripts/registry.sh; rewritten on every start.
version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $state_dir/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
EOF
}

start() {
  install_registry
  if answers && running_pid >/dev/null; then echo "127.0.0.1:$(cat "$portfile")"; return 0; fi
  local pid port attempt
  if pid=$(running_pid); then
    log "$what (pid $pid) is running but does not answer yet"
    port=$(cat "$portfile")
  else
    for attempt in 1 2 3 4 5; do
      port=$(ensure_port)
      if port_busy "$port"; then
        [ -n "${MELANGE2_REGISTRY_PORT:-}" ] && die "port $port is taken (MELANGE2_REGISTRY_PORT)"
        log "port $port is taken by something else; picking another"
        rm -f "$portfile"
        continue
      fi
      write_config "$port"
      log "starting $what on 127.0.0.1:$port (log: $logfile)"
      setsid docker-registry serve "$config" >"$logfile" 2>&1 </dev/null &
      pid=$!
      echo "$pid" >"$pidfile"
      sleep 0.2
      if kill -0 "$pid" 2>/dev/null; then break; fi
      # Lost a race for the port: try another one.
      if grep -q "address already in use" "$logfile" && [ -z "${MELANGE2_REGISTRY_PORT:-}" ] && [ "$attempt" -lt 5 ]; then
        rm -f "$portfile"
        continue
      fi
      tail -20 "$logfile" >&2
      die "$what exited"
    done
  fi
  for _ in $(seq 1 100); do
    if answers; then echo "127.0.0.1:$port"; return 0; fi
    kill -0 "$pid" 2>/dev/null || { tail -20 "$logfile" >&2; die "$what exited"; }
    sleep 0.1
  done
  tail -20 "$logfile" >&2
  die "$what did not answer on http://127.0.0.1:$port/v2/ within 10 s"
}

stop() {
  local pid
  if ! pid=$(running_pid); then
    rm -f "$pidfile"
    log "$what is not running: nothing to stop"
    return 0
  fi
  kill "$pid"
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  if kill -0 "$pid" 2>/dev/null; then
    kill -9 "$pid"
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$pidfile"
  log "stopped $what (pid $pid)"
}

case "$cmd" in
  install) install_registry ;;
  start) start ;;
  stop) stop ;;
  status) answers && echo "127.0.0.1:$(cat "$portfile")" ;;
  addr) echo "127.0.0.1:$(ensure_port)" ;;
  *) sed -n '2,20p' "$0" >&2; exit 2 ;;
esac
