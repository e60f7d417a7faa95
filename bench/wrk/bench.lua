-- One wrk script for every scenario, configured by environment variables:
--   BENCH_METHOD   GET or POST (default POST)
--   BENCH_AUTH     value of the Authorization header (optional)
--   BENCH_BODY     a fixed request body (optional)
--   BENCH_POOL     a file with one request body per line; each line is sent once: wrk thread t of n takes the
--                  lines t, t+n, t+2n... so no two requests carry the same token or code
--   BENCH_BEARERS  a file with one access token per line, sent as "Authorization: Bearer <line>" in turn
--   BENCH_THREADS  the -t given to wrk (to split the pool)
-- done() prints one JSON line (latencies in microseconds) that bench/wrk.py parses.

local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local function read_lines(path, tid, nthreads)
  local lines, i = {}, 0
  for line in io.lines(path) do
    if i % nthreads == tid then
      table.insert(lines, line)
    end
    i = i + 1
  end
  return lines
end

local requests = {}
local position = 0
wrapped = 0

function init(args)
  local method = os.getenv("BENCH_METHOD") or "POST"
  local headers = {}
  local auth = os.getenv("BENCH_AUTH")
  if auth and auth ~= "" then headers["Authorization"] = auth end
  if method == "POST" then headers["Content-Type"] = "application/x-www-form-urlencoded" end
  local pool = os.getenv("BENCH_POOL")
  local bearers = os.getenv("BENCH_BEARERS")
  local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
  if pool and pool ~= "" then
    for _, body in ipairs(read_lines(pool, tid, nthreads)) do
      table.insert(requests, wrk.format(method, nil, headers, body))
    end
  elseif bearers and bearers ~= "" then
    local body = os.getenv("BENCH_BODY")
    for _, token in ipairs(read_lines(bearers, 0, 1)) do
      local h = {}
      for k, v in pairs(headers) do h[k] = v end
      if method == "GET" then
        h["Authorization"] = "Bearer " .. token
        table.insert(requests, wrk.format(method, nil, h, nil))
      else
        table.insert(requests, wrk.format(method, nil, h, body .. token))
      end
    end
  else
    table.insert(requests, wrk.format(method, nil, headers, os.getenv("BENCH_BODY")))
  end
end

function request()
  position = position + 1
  if position > #requests then
    position = 1
    wrapped = wrapped + 1
  end
  return requests[position]
end

function done(summary, latency, reqs)
  local exhausted = 0
  for _, thread in ipairs(threads) do
    exhausted = exhausted + (thread:get("wrapped") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"status_errors":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,' ..
    '"pool_wrapped":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.status, e.connect, e.read, e.write, e.timeout, exhausted))
end
