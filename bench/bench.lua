-- wrk script for every scenario; every request is formatted once, in init().
--
--   wrk ... -s bench.lua <url> -- status <agents.tsv>        POST each agent's status report
--   wrk ... -s bench.lua <url> -- get <codes.txt> <prefix>    GET <prefix><code>, code by code
--   wrk ... -s bench.lua <url> -- post <path> <body> [auth]   POST one JSON body again and again
--
-- done() prints one line starting with BENCH_JSON that the harness reads.

local requests_ = {}
local count = 0
local next_index = 0

local function add(request)
  count = count + 1
  requests_[count] = request
end

function init(args)
  local mode = args[1]
  if mode == "status" then
    for line in io.lines(args[2]) do
      local id, secret, body = line:match("^([^\t]+)\t([^\t]+)\t(.*)$")
      if id then
        add(wrk.format("POST", "/api/v1/agents/" .. id .. "/status", {
          ["Authorization"] = "Bearer " .. secret,
          ["Content-Type"] = "application/json",
        }, body))
      end
    end
  elseif mode == "get" then
    for code in io.lines(args[2]) do
      if #code > 0 then
        add(wrk.format("GET", args[3] .. code, {}))
      end
    end
  elseif mode == "post" then
    local file = assert(io.open(args[3], "rb"))
    local body = file:read("*a")
    file:close()
    local headers = { ["Content-Type"] = "application/json" }
    if args[4] and #args[4] > 0 then
      headers["Authorization"] = args[4]
    end
    add(wrk.format("POST", args[2], headers, body))
  else
    error("unknown mode " .. tostring(mode))
  end
  -- Threads (and repeated runs) start at different places of the list.
  math.randomseed(os.time() + count)
  next_index = math.random(count) - 1
end

function request()
  next_index = next_index % count + 1
  return requests_[next_index]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"status_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,' ..
    '"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
