-- wrk script: POSTs one body (a file) to the webhook with the shared secret, and prints one
-- machine-readable line at the end. Usage:
--   wrk -t2 -c64 -d10s --latency -s bench/post.lua http://127.0.0.1:PORT/api/vapi/webhook \
--       -- BODY_FILE SECRET
-- The request is built once per thread (no request() function), so wrk itself stays cheap.

function init(args)
   local f = assert(io.open(args[1], "rb"))
   local body = f:read("*a")
   f:close()
   wrk.method = "POST"
   wrk.body = body
   wrk.headers["Content-Type"] = "application/json"
   wrk.headers["X-Vapi-Secret"] = args[2]
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH-RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,' ..
      '"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
      summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
      e.status, e.timeout, latency:percentile(50), latency:percentile(99), latency.max))
end
