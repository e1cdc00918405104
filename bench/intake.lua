-- wrk script for bench/intake.py: signed Shopify order POSTs, each with a unique X-Shopify-Event-Id.
-- Args (after --): label seconds body_path signature.
--
-- Run with -t equal to -c: one connection per wrk thread. Each thread stops itself on the first
-- response after `seconds`, so it stops *between* requests and leaves none in flight; that makes
-- "200 responses counted here" comparable to "inbox rows written" exactly. wrk's own -d is set a
-- little longer and only acts as a safety net (requests it cuts off are reported as in_flight).
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now() -- CLOCK_MONOTONIC (1), seconds; plain Lua has no sub-second clock
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local threads, next_id = {}, 1
function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

-- Per-thread state (globals so done() can read them with thread:get).
sent, got, ok, bad, elapsed, awaiting = 0, 0, 0, 0, nil, 0
local pre, post, prefix, started, deadline

function init(args)
  local f = assert(io.open(args[3], "rb"))
  local body = f:read("*a")
  f:close()
  -- Build the request once around a marker, then only splice the event id in per request.
  local req = wrk.format("POST", nil, {
    ["Content-Type"] = "application/json",
    ["X-Shopify-Topic"] = "orders/create",
    ["X-Shopify-Hmac-Sha256"] = args[4], -- the body never changes, so neither does its HMAC
    ["X-Shopify-Shop-Domain"] = "bench-store.myshopify.com",
    ["X-Shopify-API-Version"] = "2026-01",
    ["X-Shopify-Triggered-At"] = "2026-11-20T15:00:00.000Z",
    ["X-Shopify-Event-Id"] = "@EVENT@",
  }, body)
  local i, j = req:find("@EVENT@", 1, true)
  pre, post = req:sub(1, i - 1), req:sub(j + 1)
  prefix = args[1] .. "-" .. tid .. "-"
  started = now()
  deadline = started + tonumber(args[2])
end

function request()
  sent = sent + 1
  awaiting = 1 -- a flag, not sent - got: wrk also calls request() once up front to inspect it
  return pre .. prefix .. sent .. post
end

function response(status, headers, body)
  got = got + 1
  awaiting = 0
  if status == 200 then ok = ok + 1 end
  if status < 200 or status > 299 then bad = bad + 1 end
  if not elapsed and now() >= deadline then
    elapsed = now() - started
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local g, o, b, longest, cut, waiting = 0, 0, 0, 0, 0, 0
  for _, t in ipairs(threads) do
    g = g + t:get("got")
    o, b, waiting = o + t:get("ok"), b + t:get("bad"), waiting + t:get("awaiting")
    local e = t:get("elapsed")
    if e then longest = math.max(longest, e) else cut = cut + 1 end
  end
  local e = summary.errors
  io.write(string.format(
    '\nBENCH_JSON {"responses": %d, "ok": %d, "non_2xx": %d, "in_flight": %d, ' ..
    '"seconds": %.3f, "threads_cut": %d, "p50_us": %d, "p99_us": %d, "mean_us": %.1f, ' ..
    '"socket_errors": %d}\n',
    g, o, b, waiting, longest, cut, latency:percentile(50), latency:percentile(99), latency.mean,
    e.connect + e.read + e.write + e.timeout))
end
