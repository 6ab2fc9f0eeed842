# shellcheck shell=bash
# Helpers shared by hack/*-up.sh and hack/*-down.sh for running a binary as a
# detached background daemon tracked by DIR/NAME.pid, logging to DIR/NAME.log.
# Sourced, not executed.

say() { printf '%s\n' "$*"; }
die() { printf '%s: error: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }

# True if PID is a live (non-zombie) process whose executable is NAME or
# NAME-<version>; guards against acting on a recycled pid.
pid_is() {
  local pid=$1 name=$2 exe state
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ -n $state && $state != Z && $state != X ]] || return 1
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  exe=$(basename "${exe% (deleted)}")
  [[ $exe == "$name" || $exe == "$name"-* ]]
}

# daemon_running NAME DIR: the process recorded in DIR/NAME.pid is alive and ours.
daemon_running() {
  local pidfile=$2/$1.pid
  [[ -s $pidfile ]] && pid_is "$(cat "$pidfile")" "$1"
}

# Fails early with a clear message instead of a bind error buried in a log.
require_port_free() {
  local port=$1 what=$2 line
  line=$(ss -Hltn "sport = :$port" 2>/dev/null || true)
  [[ -z $line ]] || die "port $port for $what is already in use ($line); stop whatever holds it or choose another port"
}

# start_daemon NAME DIR BIN ARGS...: starts BIN in its own session so it
# outlives this script and the terminal, and records its pid. The pid is
# written by the process itself just before exec, so it is right whether or
# not setsid had to fork.
start_daemon() {
  local name=$1 dir=$2 bin=$3; shift 3
  local pidfile=$dir/$name.pid log=$dir/$name.log
  rm -f "$pidfile"
  printf '=== %s starting %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$name" >>"$log"
  # shellcheck disable=SC2016 # $$ and $@ belong to the inner shell
  # fds 8/9 are the callers' flock fds: a daemon inheriting one would hold the
  # lock for its whole life.
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$bin" "$@" \
    </dev/null >>"$log" 2>&1 8>&- 9>&- &
  local i
  for ((i = 0; i < 50; i++)); do
    # Wait for the exec too, so pid_is recognises the process from here on.
    [[ -s $pidfile ]] && pid_is "$(cat "$pidfile")" "$name" && return 0
    sleep 0.1
  done
  printf 'last lines of %s:\n' "$log" >&2
  tail -n 30 "$log" >&2 || true
  die "$name did not start"
}

# wait_for WHAT TIMEOUT CHECK_FN NAME DIR: polls CHECK_FN until it succeeds.
# If the daemon dies or the time runs out, stops it and fails with its log tail.
wait_for() {
  local what=$1 timeout=$2 check=$3 name=$4 dir=$5
  local deadline=$((SECONDS + timeout))
  while ! "$check"; do
    if ! daemon_running "$name" "$dir"; then
      printf '%s exited; last lines of %s:\n' "$name" "$dir/$name.log" >&2
      tail -n 30 "$dir/$name.log" >&2 || true
      die "$what failed to start"
    fi
    if ((SECONDS >= deadline)); then
      printf 'last lines of %s:\n' "$dir/$name.log" >&2
      tail -n 30 "$dir/$name.log" >&2 || true
      stop_daemon "$name" "$dir" 10 >/dev/null
      die "$what not ready after ${timeout}s"
    fi
    sleep 0.5
  done
}

# stop_daemon NAME DIR TIMEOUT: SIGTERM, wait up to TIMEOUT seconds, then
# SIGKILL. A stale pid file (process gone or pid reused) is just removed.
stop_daemon() {
  local name=$1 dir=$2 timeout=$3 pidfile=$2/$1.pid pid
  if ! daemon_running "$name" "$dir"; then
    rm -f "$pidfile"
    say "$name not running"
    return 0
  fi
  pid=$(cat "$pidfile")
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + timeout))
  while pid_is "$pid" "$name" && ((SECONDS < deadline)); do
    sleep 0.2
  done
  if pid_is "$pid" "$name"; then
    say "$name (pid $pid) ignored SIGTERM for ${timeout}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 5))
    while pid_is "$pid" "$name" && ((SECONDS < deadline)); do
      sleep 0.1
    done
    ! pid_is "$pid" "$name" || die "$name (pid $pid) survived SIGKILL"
  fi
  rm -f "$pidfile"
  say "$name (pid $pid) stopped"
}
