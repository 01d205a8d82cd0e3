--- Benchmark: accepting deliveries into the Redis Streams inbox on a loopback
-- redis-server (started here, AOF on, appendfsync everysec), vs the same
-- receiver path with the in-process memory store, in the same run:
--   memory   hooks:handle with the memory dedupe store and an empty handler
--            (verify + decode + claim/commit + dispatch)
--   inbox    verify + decode + inbox:put on Redis (what an inbox receiver
--            does before answering 200; hooks:handle with `inbox =` when the
--            dispatcher supports it)
-- Prints accepts/second for both, their ratio, and the Redis round trips per
-- accepted delivery, counted twice: by the client (exchanges) and by the
-- server (INFO commandstats: EVALSHA calls). Target: <= 2 round trips.
--
-- Run: make luajit all && eval "$(make -s env)" && lua5.4 bench/redis.lua [deliveries]
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/../spec/?.lua;" .. package.path
local linq = require "linqwebhooks"
local event = require "linqwebhooks.event"
local now_ns = require("linqwebhooks.process").now_ns
local rs = require "support.redis"
local inbox_redis = require "linqwebhooks.inbox.redis"

local N = tonumber(arg and arg[1]) or 5000
local ROUNDS = 3

local util = dofile(here .. "/util.lua")
local body = assert(util.read_file(here .. "/message_received.json"))
local SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw7Jxx2Oll+OE="
local TS = 1770319873
local clock = function() return TS end
local ID = "2915e81c-5068-4796-ace2-21d2c94ad298"
assert(body:find(ID, 1, true))

local bodies, heads = {}, {}
local function make(round)
  for i = 1, N do
    local id = string.format("%08x-0000-4000-8000-%012x", round, i)
    bodies[i] = body:gsub((ID:gsub("%-", "%%-")), id, 1)
    heads[i] = linq.sign{ secret = SECRET, body = bodies[i], timestamp = TS, id = "msg_" .. round .. "_" .. i }
  end
end

local srv = rs.start()
local ok, err = pcall(function()
  local v = linq.verifier{ secret = SECRET, clock = clock }
  local admin = srv:client()
  local function evalsha_calls()
    return tonumber(admin:call("INFO", "commandstats"):match("cmdstat_evalsha:calls=(%d+)") or "0")
  end

  -- the floor: one loopback round trip (PING on the same client layer)
  local best_ping = math.huge
  for _ = 1, ROUNDS do
    local t0 = now_ns()
    for _ = 1, N do
      assert(admin:call("PING"))
    end
    best_ping = math.min(best_ping, (now_ns() - t0) / N)
  end

  local best_mem, best_redis = math.huge, math.huge
  local trips_client, trips_server, via_hooks
  for round = 1, ROUNDS do
    make(round)
    -- memory store (a fresh dispatcher per round)
    local hooks = linq.webhooks{ secret = SECRET, clock = clock }
    hooks:on("message.received", function() end)
    collectgarbage("collect")
    local t0 = now_ns()
    for i = 1, N do
      local res = hooks:handle(bodies[i], heads[i])
      assert(res.status == 200 and not res.duplicate)
    end
    best_mem = math.min(best_mem, (now_ns() - t0) / N)

    -- Redis inbox
    local ib = inbox_redis.new{ url = srv.url, prefix = "bench" .. round .. ":" }
    local ok_hooks, ihooks = pcall(linq.webhooks, { secret = SECRET, clock = clock, inbox = ib })
    via_hooks = ok_hooks
    assert(ib:put{ key = "warm", id = "warm", event_type = "x", body = "{}" }) -- loads the script
    local rt0, sha0 = ib._redis.round_trips, evalsha_calls()
    collectgarbage("collect")
    t0 = now_ns()
    if ok_hooks then
      for i = 1, N do
        local res = ihooks:handle(bodies[i], heads[i])
        assert(res.status == 200, res.status)
      end
    else
      for i = 1, N do
        local b = bodies[i]
        local info = assert(v:verify(b, heads[i]))
        local ev = assert(event.decode(b, info))
        local h = heads[i]
        local stored, perr = ib:put{ key = ev.id, id = ev.id, event_type = ev.type, body = b,
          headers = { ["webhook-id"] = h["webhook-id"], ["webhook-timestamp"] = h["webhook-timestamp"],
                      ["webhook-signature"] = h["webhook-signature"] },
          info = info, received_at = TS }
        assert(stored, perr)
      end
    end
    best_redis = math.min(best_redis, (now_ns() - t0) / N)
    trips_client = (ib._redis.round_trips - rt0) / N
    trips_server = (evalsha_calls() - sha0) / N
    assert(ib:stats().pending == N + 1)
    ib:close()
  end
  admin:close()

  local jit_info = rawget(_G, "jit") and (" (" .. jit.version .. ")") or ""
  print(string.format("redis inbox bench: %s%s, %d-byte message.received, loopback redis-server"
    .. " (AOF everysec), best of %d rounds x %d deliveries", _VERSION, jit_info, #body, ROUNDS, N))
  print(string.format("  memory store  hooks:handle      %8.0f accepts/s (%6.1f us each)",
    1e9 / best_mem, best_mem / 1e3))
  print(string.format("  redis inbox   %-17s %8.0f accepts/s (%6.1f us each)",
    via_hooks and "hooks:handle" or "verify+decode+put", 1e9 / best_redis, best_redis / 1e3))
  print(string.format("  ratio redis/memory: %.3f", best_mem / best_redis))
  print(string.format("  floor: one PING round trip %.1f us (%.0f/s)", best_ping / 1e3, 1e9 / best_ping))
  print(string.format("  round trips per accept: %.2f (client), %.2f EVALSHA (server): target <= 2: %s",
    trips_client, trips_server, (trips_client <= 2 and trips_server <= 2) and "met" or "MISSED"))
end)
srv:destroy()
if not ok then
  error(err, 0)
end
