#!/usr/bin/env bash
# Runs the monitoring of a payd on this machine: Prometheus (scraping payd, evaluating
# docs/ops/alerts.yml) and Alertmanager (delivering alerts to payd's alert intake, which
# fans them out by SMS to the on-call list), both from Debian's packages, both on loopback.
#
#   scripts/ops.sh                       # payd at 127.0.0.1:8080 with its data in ./data
#   scripts/ops.sh --payd 127.0.0.1:8080 --data-dir ./data --dir ./ops-data
#
# Prometheus: http://127.0.0.1:9090 (RONGPAY_OPS_PROMETHEUS), Alertmanager:
# http://127.0.0.1:9093 (RONGPAY_OPS_ALERTMANAGER). The intake's bearer token is read from
# <data-dir>/alerts_token, which payd writes on first start (or --alerts-token-file FILE when
# payd's alerts_token is set in its config). Runs until Ctrl-C / SIGTERM, then stops both.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
payd="127.0.0.1:8080"
data_dir="./data"
ops_dir="./ops-data"
token_file=""
prom="${RONGPAY_OPS_PROMETHEUS:-127.0.0.1:9090}"
am="${RONGPAY_OPS_ALERTMANAGER:-127.0.0.1:9093}"
# Production-like defaults; the end-to-end test shortens them.
scrape="${RONGPAY_OPS_SCRAPE_INTERVAL:-5s}"
group_wait="${RONGPAY_OPS_GROUP_WAIT:-10s}"
while [ $# -gt 0 ]; do
  case "$1" in
    --payd) payd="$2"; shift 2 ;;
    --data-dir) data_dir="$2"; shift 2 ;;
    --dir) ops_dir="$2"; shift 2 ;;
    --alerts-token-file) token_file="$2"; shift 2 ;;
    *) echo "ops.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$token_file" ] || token_file="$data_dir/alerts_token"

missing=()
for p in prometheus prometheus-alertmanager; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "ops: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

for i in $(seq 1 100); do
  [ -s "$token_file" ] && break
  [ "$i" = 1 ] && echo "ops: waiting for $token_file (start payd first)"
  sleep 0.2
done
[ -s "$token_file" ] || { echo "ops: no alert intake token at $token_file" >&2; exit 2; }

mkdir -p "$ops_dir/prometheus" "$ops_dir/alertmanager"
ops_dir="$(cd "$ops_dir" && pwd)"
token_file="$(cd "$(dirname "$token_file")" && pwd)/$(basename "$token_file")"

cat > "$ops_dir/prometheus.yml" <<YML
global:
  scrape_interval: $scrape
  evaluation_interval: $scrape
rule_files:
  - $root/docs/ops/alerts.yml
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["$am"]
scrape_configs:
  - job_name: payd
    static_configs:
      - targets: ["$payd"]
YML

cat > "$ops_dir/alertmanager.yml" <<YML
route:
  receiver: payd-intake
  group_by: [alertname, channel, instance]
  group_wait: $group_wait
  group_interval: 1m
  repeat_interval: 4h
receivers:
  - name: payd-intake
    webhook_configs:
      - url: http://$payd/v1/ops/alerts
        send_resolved: true
        max_alerts: 20
        http_config:
          authorization:
            type: Bearer
            credentials_file: $token_file
YML

pids=()
stop() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop EXIT INT TERM

prometheus-alertmanager \
  --config.file="$ops_dir/alertmanager.yml" \
  --storage.path="$ops_dir/alertmanager" \
  --web.listen-address="$am" \
  --cluster.listen-address="" \
  >"$ops_dir/alertmanager.log" 2>&1 &
pids+=($!)
prometheus \
  --config.file="$ops_dir/prometheus.yml" \
  --storage.tsdb.path="$ops_dir/prometheus" \
  --web.listen-address="$prom" \
  >"$ops_dir/prometheus.log" 2>&1 &
pids+=($!)
echo "ops: Prometheus on http://$prom scraping payd at $payd; Alertmanager on http://$am delivering to http://$payd/v1/ops/alerts"
echo "ops: logs in $ops_dir/{prometheus,alertmanager}.log; Ctrl-C stops both"
wait -n "${pids[@]}"
echo "ops: a process exited; see $ops_dir/*.log" >&2
exit 1
