#!/usr/bin/env bash
# Install, configure and start the databases the tests use, then wait until both answer:
#   PostgreSQL on 127.0.0.1:5432, trust auth for local TCP connections, a database `test`;
#   MariaDB    on 127.0.0.1:3306, root without password,            a database `test`.
# Safe to run again: it installs only what is missing and starts only what is down.
# Installing needs root (apt-get); a developer who has both servers running needs nothing else.
# Usage: bash scripts/services.sh [postgres] [mariadb]   (both when none is named)
set -euo pipefail

PG_PORT=5432
MARIADB_PORT=3306
WAIT_S=60

log() { printf 'services: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "needs root for: $*"; return 1
  fi
}

apt_install() {
  log "installing $* (Debian packages)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

wait_until() {  # wait_until <name> <command...>: retry the command until it succeeds or WAIT_S pass
  local name=$1; shift
  local deadline=$((SECONDS + WAIT_S))
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then log "$name did not answer within ${WAIT_S}s"; return 1; fi
    sleep 0.5
  done
  log "$name is up"
}

postgres_answers() { psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -tAc 'SELECT 1' >/dev/null 2>&1; }

start_postgres() {
  command -v pg_ctlcluster >/dev/null || apt_install postgresql
  if postgres_answers; then log "PostgreSQL already answers on 127.0.0.1:$PG_PORT"; else
    local version conf hba
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    [ -d "/etc/postgresql/$version/main" ] || as_root pg_createcluster "$version" main --port "$PG_PORT"
    conf=/etc/postgresql/$version/main/postgresql.conf
    hba=/etc/postgresql/$version/main/pg_hba.conf
    # Loopback only, on the port the tests use.
    as_root sed -i -E "s/^#?listen_addresses\s*=.*/listen_addresses = '127.0.0.1'/; s/^#?port\s*=.*/port = $PG_PORT/" "$conf"
    # Trust local TCP connections (test machines only): prepended, so these lines match first.
    if ! grep -q '# clickstream tests' "$hba"; then
      as_root sed -i '1i # clickstream tests: trust loopback TCP\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
    fi
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main restart \
      || as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
    wait_until PostgreSQL postgres_answers
  fi
  if [ -z "$(psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'")" ]; then
    psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -qc 'CREATE DATABASE test'
  fi
}

mariadb_answers() { mariadb -h 127.0.0.1 -P "$MARIADB_PORT" -u root -e 'SELECT 1' >/dev/null 2>&1; }

start_mariadb() {
  [ -x /usr/sbin/mariadbd ] || apt_install mariadb-server mariadb-client
  if mariadb_answers; then log "MariaDB already answers on 127.0.0.1:$MARIADB_PORT"; else
    as_root install -d -o mysql -g mysql /run/mysqld
    if [ ! -d /var/lib/mysql/mysql ]; then
      as_root mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
    fi
    if ! as_root mariadb-admin --socket=/run/mysqld/mysqld.sock ping >/dev/null 2>&1; then
      as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- \
        --user=mysql --bind-address=127.0.0.1 --port="$MARIADB_PORT" --socket=/run/mysqld/mysqld.sock
      wait_until "MariaDB (socket)" as_root mariadb-admin --socket=/run/mysqld/mysqld.sock ping
    fi
    # Debian's root logs in by unix socket only; the tests connect over TCP as root without a password.
    as_root mariadb --socket=/run/mysqld/mysqld.sock -e "
      ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('');
      CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
      GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
      FLUSH PRIVILEGES;"
    wait_until MariaDB mariadb_answers
  fi
  mariadb -h 127.0.0.1 -P "$MARIADB_PORT" -u root -e 'CREATE DATABASE IF NOT EXISTS test'
}

services=("$@")
[ ${#services[@]} -gt 0 ] || services=(postgres mariadb)
for service in "${services[@]}"; do
  case "$service" in
    postgres) start_postgres ;;
    mariadb) start_mariadb ;;
    *) log "unknown service '$service' (postgres, mariadb)"; exit 2 ;;
  esac
done
