-- wrk script: the harness's uniform payment load from a second, independent client.
-- WRK_SETUP names the file `loadtest run --setup-only --wrk-setup FILE` wrote: lines
-- "M <Authorization header value>" (merchants) and "P <account id>" (funded payers).
-- Each request: a random merchant and payer, 1.00-99.99 CNY, a unique out_trade_no and
-- Idempotency-Key. With WRK_JSON set, done() writes a report in the harness's JSON shape so
-- `loadtest table` can put both side by side.
local merchants, payers = {}, {}
local setup = assert(io.open(assert(os.getenv("WRK_SETUP"), "WRK_SETUP not set"), "r"))
for line in setup:lines() do
  local kind, value = line:match("^(%a) (.+)$")
  if kind == "M" then merchants[#merchants + 1] = value end
  if kind == "P" then payers[#payers + 1] = value end
end
setup:close()
assert(#merchants > 0 and #payers > 0, "the setup file has no merchants or payers")
local run = os.getenv("RUN_ID") or tostring(os.time())
local n = 0
math.randomseed(os.time())

request = function()
  n = n + 1
  local cents = math.random(100, 9999)
  local body = string.format(
    '{"out_trade_no":"w%s_%d","amount":"%d.%02d","currency":"CNY","payment_method":{"type":"balance","account_id":"%s"}}',
    run, n, math.floor(cents / 100), cents % 100, payers[math.random(#payers)])
  return wrk.format("POST", "/v1/payments", {
    ["Authorization"] = merchants[math.random(#merchants)],
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = string.format("w%s_%d", run, n),
  }, body)
end

done = function(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  local errors = e.connect + e.read + e.write + e.status + e.timeout
  local ok = summary.requests - e.status
  io.write(string.format("wrk: %d requests in %.2f s, %.0f ok/s, non-2xx %d, p50 %.3f ms, p99 %.3f ms\n",
    summary.requests, secs, ok / secs, e.status, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
  local path = os.getenv("WRK_JSON")
  if not path then return end
  local f = assert(io.open(path, "w"))
  f:write(string.format([[{"label":"%s","target":"payd","scenario":"uniform","mix":"","pacing":"closed (wrk)",
"connections":%d,"measured_secs":%.3f,"sent":%d,"ok":%d,"errors":%d,"throughput":%.1f,
"latency":{"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"mean_us":%.1f},
"outcomes":{"non_2xx":%d,"socket_errors":%d},"timeline":[],"distribution":[],"checks":null,
"unix_time":%d,"machine":"%s"}
]], os.getenv("LABEL") or "wrk-payments", tonumber(os.getenv("CONNECTIONS") or "0"), secs,
    summary.requests, ok, errors, ok / secs,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean, e.status, e.connect + e.read + e.write + e.timeout,
    os.time(), os.getenv("MACHINE") or ""))
  f:close()
end
