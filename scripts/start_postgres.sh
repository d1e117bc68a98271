#!/usr/bin/env bash
# Start (once) a throwaway PostgreSQL cluster on a loopback port for the store tests, and print
# its URL on stdout (logs go to stderr):
#   export WIREBRIDGE_TEST_POSTGRES_URL="$(bash scripts/start_postgres.sh)"
#   bash scripts/start_postgres.sh status      # exit 0 and print the URL if it is running
#   bash scripts/start_postgres.sh stop        # stop it (the data directory is kept)
# The cluster is shared by everyone on the machine who uses this script: stop it only if you
# started it (check `status` first), or concurrent test runs lose their server.
# Installs Debian's `postgresql` package when no server binaries are found (needs root). The
# cluster lives in ${WIREBRIDGE_PG_DIR:-${TMPDIR:-/tmp}/wirebridge-postgres}: initdb'd on first
# use, owned by the `postgres` user when run as root (initdb refuses root), listening only on
# 127.0.0.1 (first free port from ${WIREBRIDGE_PG_PORT:-55432}) and on a socket in that dir,
# with trust authentication and fsync off: test data only, never anything to keep. A second
# call while it runs just prints the URL again; concurrent calls wait on a lock.
set -euo pipefail

ACTION="${1:-start}"
DIR="${WIREBRIDGE_PG_DIR:-${TMPDIR:-/tmp}/wirebridge-postgres}"
BASE_PORT="${WIREBRIDGE_PG_PORT:-55432}"
DATABASE="${WIREBRIDGE_PG_DATABASE:-wirebridge}"
DATA="$DIR/data"

log() { printf '[start_postgres %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

case "$ACTION" in
  start | stop | status) ;;
  *)
    echo "usage: $0 [start|status|stop]" >&2
    exit 2
    ;;
esac

find_bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -n -r); do
    if [[ -x "$d/initdb" && -x "$d/pg_ctl" && -x "$d/postgres" ]]; then
      echo "$d"
      return 0
    fi
  done
  if command -v pg_config >/dev/null 2>&1; then
    d="$(pg_config --bindir)"
    [[ -x "$d/initdb" && -x "$d/pg_ctl" ]] && echo "$d" && return 0
  fi
  return 1
}

BINDIR="$(find_bindir || true)"
if [[ -z "$BINDIR" ]]; then
  [[ "$ACTION" == stop ]] && exit 0
  [[ "$ACTION" == status ]] && exit 1
  [[ "$(id -u)" == 0 ]] || die "PostgreSQL is not installed and installing it needs root (apt-get install postgresql)"
  log "installing Debian's postgresql package"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
  BINDIR="$(find_bindir)" || die "postgresql installed, but no initdb/pg_ctl found under /usr/lib/postgresql"
fi

# As root, the cluster belongs to `postgres`; otherwise to whoever runs this.
if [[ "$(id -u)" == 0 ]]; then
  RUN_USER=postgres
  id "$RUN_USER" >/dev/null 2>&1 || die "no '$RUN_USER' user to run the server as (it comes with the postgresql package)"
  as_owner() { runuser -u "$RUN_USER" -- "$@"; }
else
  RUN_USER="$(id -un)"
  as_owner() { "$@"; }
fi

[[ "$ACTION" != start && ! -d "$DIR" ]] && { [[ "$ACTION" == stop ]]; exit; } # nothing to do
mkdir -p "$DIR"
chmod 0755 "$DIR"
[[ "$(id -u)" == 0 ]] && chown "$RUN_USER" "$DIR"

exec 9>"$DIR/.lock"
flock 9 # one caller at a time: a second waits, then finds the server running

running() { [[ -f "$DATA/postmaster.pid" ]] && as_owner "$BINDIR/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

if [[ "$ACTION" == stop ]]; then
  if running; then
    as_owner "$BINDIR/pg_ctl" -D "$DATA" -m fast -w stop >&2 9>&-
  fi
  exit 0
fi

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
url() { echo "postgresql://postgres@127.0.0.1:$(cat "$DIR/port")/$DATABASE"; }

if [[ "$ACTION" == status ]]; then
  running && [[ -f "$DIR/port" ]] && url && exit 0
  exit 1
fi

if running && [[ -f "$DIR/port" ]]; then
  url
  exit 0
fi

if [[ ! -f "$DATA/PG_VERSION" ]]; then
  log "initdb in $DATA (as $RUN_USER)"
  rm -rf "$DATA"
  as_owner "$BINDIR/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --no-locale >"$DIR/initdb.log" 2>&1 ||
    die "initdb failed; see $DIR/initdb.log"
fi

port="$BASE_PORT"
while port_in_use "$port"; do
  port=$((port + 1))
  ((port < BASE_PORT + 100)) || die "no free port in $BASE_PORT..$((BASE_PORT + 99))"
done
echo "$port" >"$DIR/port"

log "starting PostgreSQL ($("$BINDIR/postgres" --version)) on 127.0.0.1:$port"
as_owner "$BINDIR/pg_ctl" -D "$DATA" -l "$DIR/server.log" -w -t 60 start -o \
  "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
  >&2 9>&- || die "the server did not start; see $DIR/server.log" # 9>&-: the server must not hold the lock

PSQL=("$BINDIR/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -X -q -t -A)
if [[ "$("${PSQL[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'")" != 1 ]]; then
  "${PSQL[@]}" -c "CREATE DATABASE \"$DATABASE\"" >&2
fi
url
