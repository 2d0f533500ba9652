#!/usr/bin/env bash
# Bring up the real services the integration tests talk to: PostgreSQL, MariaDB, Redis, RabbitMQ,
# and a CouchDB-protocol server (pouchdb-server, in memory, from npm into .ci/node).
# Each is checked on its port, started if down, installed with apt if missing (CI runs as root,
# without systemd). MongoDB (SecantusDB), S3 (moto) and GCS (fake-gcs-server) are started by the
# tests themselves from Python packages.
set -uo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && exec 3>&- ; }
wait_port() { # name port seconds
  for _ in $(seq 1 "$3"); do port_open "$2" && { echo "services: $1 up on $2"; return 0; }; sleep 1; done
  echo "services: $1 did not come up on port $2" >&2; return 1
}
apt_updated=0
need_pkg() { # command package
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "$apt_updated" = 0 ]; then apt-get update -qq >/dev/null 2>&1 || true; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null 2>&1 || echo "services: apt could not install $2" >&2
}

postgres() {
  port_open 5432 && { echo "services: postgresql already up"; return 0; }
  need_pkg pg_ctlcluster postgresql
  local ver; ver=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -1)
  [ -n "$ver" ] || { echo "services: no PostgreSQL cluster found" >&2; return 1; }
  # trust auth on localhost for the test databases, as on the project's machines
  local hba="/etc/postgresql/$ver/main/pg_hba.conf"
  grep -q "rcetl-ci" "$hba" 2>/dev/null || sed -i '1i host all all 127.0.0.1/32 trust # rcetl-ci' "$hba"
  pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
  wait_port postgresql 5432 60 || return 1
  for db in test root; do
    su postgres -c "psql -h 127.0.0.1 -tAc \"SELECT 1 FROM pg_database WHERE datname='$db'\"" | grep -q 1 \
      || su postgres -c "createdb -h 127.0.0.1 $db" || true
  done
  su postgres -c "psql -h 127.0.0.1 -tAc \"SELECT 1 FROM pg_roles WHERE rolname='root'\"" | grep -q 1 \
    || su postgres -c "psql -h 127.0.0.1 -c 'CREATE ROLE root SUPERUSER LOGIN'" || true
}

mariadb() {
  port_open 3306 && { echo "services: mariadb already up"; return 0; }
  need_pkg mariadbd mariadb-server
  install -d -o mysql -g mysql /run/mysqld 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql || true
  wait_port mariadb 3306 60 || return 1
  # a fresh apt install lets root in only over the socket: allow TCP root without a password for tests
  mariadb -uroot -e "CREATE DATABASE IF NOT EXISTS test; CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY ''; GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION; FLUSH PRIVILEGES;" 2>/dev/null || true
}

redis() {
  port_open 6379 && { echo "services: redis already up"; return 0; }
  need_pkg redis-server redis-server
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  wait_port redis 6379 30
}

rabbitmq() {
  port_open 5672 && { echo "services: rabbitmq already up"; return 0; }
  need_pkg rabbitmq-server rabbitmq-server
  rabbitmq-server -detached >/dev/null 2>&1 || true
  # rabbitmq-diagnostics answers before the AMQP port opens: wait for the port itself
  wait_port rabbitmq 5672 120
}

browser() {
  # headless Chromium renders the HTML run report in tests/kit/test_report_in_browser.py
  command -v chromium >/dev/null 2>&1 || need_pkg chromium chromium
  command -v chromium >/dev/null 2>&1 && echo "services: chromium available" || echo "services: no chromium" >&2
}

couchdb() {
  # pouchdb-server (a CouchDB-protocol server, in memory) from npm into the project-local .ci/node
  port_open 5984 && { echo "services: couchdb-protocol server already up on 5984"; return 0; }
  command -v npm >/dev/null 2>&1 || need_pkg npm npm
  local bin=.ci/node/node_modules/.bin/pouchdb-server
  [ -x "$bin" ] || (mkdir -p .ci/node && cd .ci/node && npm install --no-audit --no-fund --loglevel=error pouchdb-server >/dev/null) \
    || { echo "services: npm could not install pouchdb-server" >&2; return 1; }
  mkdir -p .ci/node/run  # it writes its config and log to its working folder
  (cd .ci/node/run && nohup ../node_modules/.bin/pouchdb-server --in-memory --host 127.0.0.1 --port 5984 >/dev/null 2>&1 &)
  wait_port pouchdb-server 5984 60
}

status=0
browser || true
postgres || status=1
mariadb || status=1
redis || status=1
rabbitmq || status=1
couchdb || status=1
exit $status
