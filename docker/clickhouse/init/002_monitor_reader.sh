#!/bin/bash
# Creates the read-only ClickHouse user of the `monitor` service (docker/compose.yaml): SELECT
# on the traces database and nothing else. Runs once, on an empty data volume, after
# 001_otel_traces.sql, as CLICKHOUSE_USER (CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT=1 lets that
# user create users). Names must be identifiers and the password hex (openssl rand -hex 32).
set -euo pipefail

: "${CLICKHOUSE_MONITOR_USER:?set CLICKHOUSE_MONITOR_USER in .env}"
: "${CLICKHOUSE_MONITOR_PASSWORD:?set CLICKHOUSE_MONITOR_PASSWORD in .env}"
: "${CLICKHOUSE_DB:?set CLICKHOUSE_DB in .env}"
for name in "$CLICKHOUSE_MONITOR_USER" "$CLICKHOUSE_DB"; do
  if [[ ! "$name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
    echo "002_monitor_reader.sh: '$name' is not a plain identifier" >&2
    exit 1
  fi
done
if [[ ! "$CLICKHOUSE_MONITOR_PASSWORD" =~ ^[A-Za-z0-9_.-]+$ ]]; then
  echo "002_monitor_reader.sh: CLICKHOUSE_MONITOR_PASSWORD must be letters, digits, '_', '.', '-' (use openssl rand -hex 32)" >&2
  exit 1
fi

clickhouse client --user "$CLICKHOUSE_USER" --password "$CLICKHOUSE_PASSWORD" --multiquery <<SQL
CREATE USER IF NOT EXISTS ${CLICKHOUSE_MONITOR_USER}
    IDENTIFIED WITH sha256_password BY '${CLICKHOUSE_MONITOR_PASSWORD}'
    SETTINGS readonly = 2;
GRANT SELECT ON ${CLICKHOUSE_DB}.* TO ${CLICKHOUSE_MONITOR_USER};
SQL
echo "002_monitor_reader.sh: created read-only user ${CLICKHOUSE_MONITOR_USER} (SELECT on ${CLICKHOUSE_DB}.*)"
