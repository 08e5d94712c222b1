-- wrk script: API-key requests, each with a fresh nonce and its precomputed signature.
--
-- wrk's LuaJIT has no HMAC, so bench/run.py precomputes a table in Python: for every millisecond of the
-- run (plus slack) one nonce, and for each of K keys the signature hex(HMAC-SHA256(secret, nonce .. kid)).
-- This script walks the table by wall-clock time and never hands out an entry twice:
--
--   * the cursor is a (millisecond slot, key) pair; each request takes the next key of the slot, then the
--     next slot;
--   * a cursor that has fallen more than LAG ms behind the clock jumps forward (nonces are accepted within
--     +-5 s of the server clock, so slots up to LAG ms old are still valid);
--   * FLOOR (the first slot this wrk invocation may use) is the warm-up's last slot + 1, so the measured
--     run cannot replay a warm-up nonce.
--
-- Capacity: K x 1000 requests/s sustained, plus a (LAG + LEAD) ms buffer of K keys for bursts.  A cursor
-- more than LEAD ms ahead of the clock counts as an overrun, past the table's end as exhausted; either
-- makes requests fail (expired or replayed nonce), which shows up as non-2xx responses.
--
-- One wrk thread only (-t1): each thread has its own cursor, so two threads would replay each other's
-- entries.
--
-- Usage: wrk -t1 ... -s bench/apikey.lua <url> -- <table file> <floor slot> [lag ms] [lead ms]
-- Table file: line 1 "t0_ms K M"; line 2 the K kids; then M lines "nonce sig_1 ... sig_K".

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } authz_bench_timespec;
int clock_gettime(int clk_id, authz_bench_timespec *tp);
]]
local CLOCK_REALTIME = 0
local timespec = ffi.new("authz_bench_timespec")

local function now_ms()
  ffi.C.clock_gettime(CLOCK_REALTIME, timespec)
  return tonumber(timespec.tv_sec) * 1000 + math.floor(tonumber(timespec.tv_nsec) / 1000000)
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  assert(#threads == 1, "apikey.lua needs exactly one wrk thread (-t1)")
end

-- Thread state (globals so that done() can read them with thread:get).
t0, keys, slots, floor_slot, lag, lead = 0, 0, 0, 0, 3000, 3000
kids, nonces, sigs = {}, {}, {}
slot, key = 0, 0 -- the cursor: next entry to hand out
first_slot, last_slot = -1, -1
sent, jumps, overruns, exhausted = 0, 0, 0, 0
prefix = ""

function init(args)
  local path = args[1]
  assert(path, "usage: -- <table file> <floor slot> [lag ms] [lead ms]")
  floor_slot = tonumber(args[2] or "0")
  lag = tonumber(args[3] or "3000")
  lead = tonumber(args[4] or "3000")
  local file = assert(io.open(path, "r"))
  local header = file:read("*l")
  local a, b, c = header:match("^(%d+) (%d+) (%d+)$")
  t0, keys, slots = tonumber(a), tonumber(b), tonumber(c)
  local i = 0
  for kid in file:read("*l"):gmatch("%S+") do
    kids[i] = kid
    i = i + 1
  end
  assert(i == keys, "kid count does not match the header")
  local m = 0
  for line in file:lines() do
    local fields = line:gmatch("%S+")
    nonces[m] = fields()
    for k = 0, keys - 1 do
      sigs[m * keys + k] = fields()
    end
    m = m + 1
  end
  file:close()
  assert(m == slots, "slot count does not match the header")
  slot = floor_slot
  -- wrk.format ends the head with an empty line; drop it so that the X-Auth-* headers can follow.
  local head = wrk.format("GET", wrk.path)
  prefix = head:sub(1, #head - 2)
end

function request()
  local now_slot = now_ms() - t0
  if slot < now_slot - lag then
    slot, key = now_slot - lag, 0
    jumps = jumps + 1
  end
  if slot - now_slot > lead then
    overruns = overruns + 1
  end
  local m, k = slot, key
  if m >= slots then
    exhausted = exhausted + 1
    m, k = slots - 1, keys - 1 -- a replay: the server answers 401, counted as non-2xx
  else
    key = key + 1
    if key == keys then
      slot, key = slot + 1, 0
    end
    if first_slot < 0 then
      first_slot = m
    end
    last_slot = m
  end
  sent = sent + 1
  return prefix
    .. "X-Auth-Apikey: " .. kids[k] .. "\r\n"
    .. "X-Auth-Nonce: " .. nonces[m] .. "\r\n"
    .. "X-Auth-Signature: " .. sigs[m * keys + k] .. "\r\n\r\n"
end

function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    io.write(string.format(
      "apikey.lua: sent=%d first_slot=%d last_slot=%d jumps=%d overruns=%d exhausted=%d\n",
      thread:get("sent"), thread:get("first_slot"), thread:get("last_slot"),
      thread:get("jumps"), thread:get("overruns"), thread:get("exhausted")
    ))
  end
end
