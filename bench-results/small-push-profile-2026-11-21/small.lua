-- ~100-byte PUTs to 10,000 distinct groups, spread over wrk's connections.
local n = 0
local body = "# TYPE small_push_metric gauge\nsmall_push_metric{source=\"wrk\",kind=\"rate\"} 42\n"
request = function()
  n = n + 1
  return wrk.format("PUT", "/metrics/job/small/instance/i" .. (n % 10000), nil, body)
end
