-- wrk script for the end-to-end run: each thread POSTs QUOTA end-of-call reports, each with
-- its own call id (the 36-character mark in the template replaced), then only sends a cheap
-- GET /healthz once a second per connection until the runner stops wrk (it watches the
-- stream length). Usage:
--   wrk -t2 -c64 -d600s -s bench/e2e.lua http://127.0.0.1:PORT/api/vapi/webhook \
--       -- TEMPLATE_FILE SECRET QUOTA_PER_THREAD MARK [CYCLE [PAUSE_MS]]
-- With CYCLE, the call ids repeat after CYCLE messages per thread (the soak: rows that
-- exist are updated, so the database does not grow); with PAUSE_MS each connection waits
-- that long before each post, which caps the rate below what the workers file.

local threads = 0

function setup(thread)
   thread:set("tid", threads)
   threads = threads + 1
end

local parts, secret, quota, cycle, pause
local posted = 0

function init(args)
   local f = assert(io.open(args[1], "rb"))
   local tmpl = f:read("*a")
   f:close()
   secret = args[2]
   quota = tonumber(args[3])
   cycle = tonumber(args[5] or "0")
   pause = tonumber(args[6] or "0")
   -- The template split at every occurrence of the mark (call id, recording URLs).
   parts = {}
   local from = 1
   while true do
      local s, e = string.find(tmpl, args[4], from, true)
      if not s then
         break
      end
      parts[#parts + 1] = string.sub(tmpl, from, s - 1)
      from = e + 1
   end
   parts[#parts + 1] = string.sub(tmpl, from)
   assert(#parts > 1, "call id mark not found in the template")
end

local headers = {}
-- wrk calls delay() before each request it sends. It also calls request() once on the first
-- thread before any connection exists, to check the request parses; that call must not use
-- up a message, so request() counts only calls announced by a delay().
local announced = 0

function delay()
   announced = announced + 1
   if posted >= quota then
      return 1000
   end
   return pause
end

function request()
   if announced == 0 or posted >= quota then
      return wrk.format("GET", "/healthz")
   end
   announced = announced - 1
   posted = posted + 1
   -- 36 characters, like a Vapi call id: thread and sequence number.
   local seq = posted
   if cycle > 0 then
      seq = (posted - 1) % cycle + 1
   end
   local id = string.format("%08x-0000-4000-8000-%012x", tid, seq)
   headers["Content-Type"] = "application/json"
   headers["X-Vapi-Secret"] = secret
   return wrk.format("POST", nil, headers, table.concat(parts, id))
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH-RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,' ..
      '"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
      summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
      e.status, e.timeout, latency:percentile(50), latency:percentile(99), latency.max))
end
