-- wrk script: POST /v1/payments with a unique out_trade_no per request, payers drawn from
-- PAYERS (comma-separated account ids), authenticated with the merchant key SK.
local payers = {}
for id in string.gmatch(os.getenv("PAYERS") or "", "[^,]+") do payers[#payers + 1] = id end
local sk = os.getenv("SK")
local run = os.getenv("RUN_ID") or tostring(os.time())
local n = 0
math.randomseed(os.time())

request = function()
  n = n + 1
  local payer = payers[math.random(#payers)]
  local body = string.format(
    '{"out_trade_no":"%s-%d","amount":"0.01","currency":"CNY","payment_method":{"type":"balance","account_id":"%s"}}',
    run, n, payer)
  return wrk.format("POST", "/v1/payments",
    { ["Authorization"] = "Bearer " .. sk, ["Content-Type"] = "application/json" }, body)
end

local statuses = {}
response = function(status)
  statuses[status] = (statuses[status] or 0) + 1
end

done = function(summary, latency, requests)
  io.write(string.format("p50_ms %.3f p99_ms %.3f p999_ms %.3f\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency:percentile(99.9) / 1000))
end
