#!/usr/bin/env bash
# Answers the common questions from payd's JSON logs (one JSON object per line on stderr;
# RONGPAY_LOG_FORMAT=json, the default). Each command is one jq filter, shown in
# docs/ops/LOGS.md; reads the files given, or stdin.
#
#   scripts/logs.sh errors   payd.log        # error answers by code, most frequent first
#   scripts/logs.sh slowest  payd.log [N]    # the N slowest requests (default 10)
#   scripts/logs.sh payment  payd.log ID     # everything logged about one payment, in order
#   scripts/logs.sh request  payd.log ID     # one request by its Request-Id
#   scripts/logs.sh routes   payd.log        # requests, 5xx and p99 latency per route
set -euo pipefail
what="${1:?errors|slowest|payment|request|routes}"; shift
file="${1:--}"; shift || true
case "$what" in
  errors)
    jq -r 'select(.target == "access" and .status >= 400) | "\(.status) \(.error_code // "-")"' "$file" \
      | sort | uniq -c | sort -rn ;;
  slowest)
    n="${1:-10}"
    jq -c 'select(.target == "access") | {latency_us, status, method, route, request_id, payment_id}' "$file" \
      | jq -s -c "sort_by(-.latency_us) | .[:$n][]" ;;
  payment)
    id="${1:?payment id}"
    jq -c --arg id "$id" 'select(.payment_id == $id or ((.spans // []) | any(.payment_id == $id)))
      | {timestamp, level, target, message, status, route, outcome, channel, ranked, latency_us, seq}
      | with_entries(select(.value != null))' "$file" ;;
  request)
    id="${1:?request id}"
    jq -c --arg id "$id" 'select(.request_id == $id or ((.spans // []) | any(.request_id == $id)))' "$file" ;;
  routes)
    jq -s -r 'map(select(.target == "access")) | group_by(.route)[]
      | (map(.latency_us) | sort) as $l
      | "\(.[0].route)\t\(length) requests\t\(map(select(.status >= 500)) | length) 5xx\tp99 \($l[((($l | length) * 0.99) | floor)] // $l[-1]) µs"' "$file" ;;
  *) echo "logs.sh: unknown question $what" >&2; exit 2 ;;
esac
