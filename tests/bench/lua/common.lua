-- Shared by every phase script (loaded with dofile): the headers, a per-thread random
-- seed, and done(), which prints the phase's figures as one JSON line for tests/bench/run.py.

bearer = { ["Authorization"] = "Bearer " .. (os.getenv("BENCH_TOKEN") or "") }
json_headers = {
   ["Authorization"] = bearer["Authorization"],
   ["Content-Type"] = "application/json",
}
first_id = tonumber(os.getenv("BENCH_FIRST_ID") or "1")
last_id = tonumber(os.getenv("BENCH_LAST_ID") or "1")

local threads = 0

function setup(thread)
   threads = threads + 1
   thread:set("thread_number", threads)
end

function init(args)
   math.randomseed(os.time() * 100 + (thread_number or 0))
end

function done(summary, latency, requests)
   local errors = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
         .. '"max_us": %d, "non_2xx": %d, "socket_errors": %d}\n',
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
      latency.max, errors.status, errors.connect + errors.read + errors.write + errors.timeout
   ))
end
