--- The end-to-end quickstart run by `make demo`:
--   1. start the emulator (a local stand-in for the Linq API) in a child process
--   2. start a webhook receiver on a free loopback port (in this process)
--   3. create a webhook subscription with the client, pointing at the receiver
--   4. register handlers on linq.webhooks with the subscription's signing secret
--   5. trigger events through the emulator; one handler fails once, so the
--      emulator's retry of that delivery is seen to succeed
--   6. print the emulator's delivery log, delete the subscription, stop everything
-- Exits 0 when every event was handled, 1 otherwise.
--
-- Run: lua5.4 examples/demo.lua

-- Runs from a checkout after `make` (or `make luajit`) with no LUA_PATH:
-- this checkout's lua/ and build/<5.4|jit>/ come first (`make -s env` not needed).
do
  local dir = (arg and arg[0] or ""):match("^(.*)[/\\]") or "."
  local root = dir .. "/../"
  local build = rawget(_G, "jit") and "jit" or _VERSION:match("%d+%.%d+")
  package.path = root .. "lua/?.lua;" .. root .. "lua/?/init.lua;" .. package.path
  package.cpath = root .. "build/" .. build .. "/?.so;" .. package.cpath
end
local linq = require "linqwebhooks"
local receiver = require "linqwebhooks.receiver"
local emulator = require "linqwebhooks.emulator"
local json = require "linqwebhooks.json"
local socket = require "socket"

local function say(fmt, ...)
  io.stdout:write(string.format(fmt, ...), "\n")
  io.stdout:flush()
end

local function short(id)
  return tostring(id):sub(1, 8)
end

local EVENTS = { "message.received", "message.sent", "reaction.added",
                 "chat.typing_indicator.started" }

local emu, rcv, client, sub, admin
local function cleanup()
  if sub then
    local ok, err = sub:delete()
    if ok then
      say("[6/6] subscription %s deleted", short(sub.id))
    else
      say("      could not delete the subscription: %s", tostring(err))
    end
    sub = nil
  end
  if client then client:close() end
  if admin then admin:close() end
  if rcv then rcv:close() end
  if emu then
    emu.stop()
    say("      emulator stopped, receiver closed")
  end
  client, admin, rcv, emu = nil, nil, nil, nil
end

local function fail(msg)
  say("demo FAILED: %s", msg)
  cleanup()
  os.exit(1)
end

local function run()
  say("linqwebhooks demo: Linq API emulator -> signed webhooks -> receiver -> handlers")
  say("")

  -- 1. the emulator: retries quickly so the demo stays short (Linq itself
  --    backs off over minutes)
  emu = emulator.spawn{ api_key = "demo_api_key",
                        delivery = { attempts = 5, base_delay = 0.5, max_delay = 2, timeout = 5 } }
  say("[1/6] emulator listening on %s", emu.url)

  -- 2. the receiver, without hooks yet: the secret comes with the subscription
  rcv = assert(receiver.new{ host = "127.0.0.1", port = 0, path = "/webhooks" })
  say("[2/6] receiver listening on %s", rcv.url)

  -- 3. the subscription, created with the client (pinned to payload version 2026-02-03)
  client = linq.client{ api_key = emu.api_key, base_url = emu.api_url, allow_http_targets = true }
  local err
  sub, err = client.webhook_subscriptions:create{
    target_url = rcv.url .. "?version=2026-02-03",
    subscribed_events = EVENTS,
  }
  if not sub then
    return fail("create subscription: " .. tostring(err))
  end
  say("[3/6] subscription %s -> %s", short(sub.id), sub.target_url)
  say("      events: %s", table.concat(sub.subscribed_events, ", "))
  say("      signing secret received (%d characters, not shown)", #sub.signing_secret)

  -- 4. the dispatcher and the handlers
  local hooks = linq.webhooks{ secret = sub.signing_secret }
  local handled, outage = {}, true
  hooks:on("message.received", function(ev)
    if outage then
      outage = false
      error("simulated database outage", 0)
    end
    say("  handler  %-30s from %s in chat %s: %q", ev.type,
        ev:sender(), short(ev:chat_id()), ev:text())
    handled[ev.id] = true
  end)
  hooks:on("message.sent", function(ev)
    say("  handler  %-30s to chat %s: %q (outbound: %s)", ev.type,
        short(ev:chat_id()), ev:text(), tostring(not ev:is_inbound()))
    handled[ev.id] = true
  end)
  hooks:on("reaction.*", function(ev)
    say("  handler  %-30s %s on message %s", ev.type, tostring(ev.data.reaction_type),
        short(ev:message_id()))
    handled[ev.id] = true
  end)
  hooks:on("chat.typing_indicator.*", function(ev)
    say("  handler  %-30s chat %s", ev.type, short(ev:chat_id()))
    handled[ev.id] = true
  end)
  hooks:on_error(function(e, ev)
    say("  handler  %-30s FAILED: %s -> answered 500, the emulator will retry",
        ev.type, tostring(e.cause))
  end)
  rcv:set_hooks(hooks)

  -- 5. trigger the events through the emulator's admin endpoint
  admin = require("linqwebhooks.transport.curl").new{ timeout = 10, connect_timeout = 5 }
  say("[4/6] triggering %d events through the emulator", #EVENTS)
  local pending = {}
  for _, etype in ipairs(EVENTS) do
    local res, kind, msg = admin:request("POST", emu.url .. "/_emulator/events",
      { ["Content-Type"] = "application/json" }, json.encode({ event_type = etype }))
    if not res or res.status ~= 202 then
      return fail("trigger " .. etype .. ": " .. tostring(res and res.body or (kind .. ": " .. msg)))
    end
    local out = json.decode(res.body)
    pending[#pending + 1] = out.event_id
  end

  -- serve deliveries until every event was handled (bounded)
  local deadline = socket.gettime() + 30
  local function all_handled()
    for _, id in ipairs(pending) do
      if not handled[id] then
        return false
      end
    end
    return true
  end
  while not all_handled() do
    if socket.gettime() > deadline then
      return fail("not every event was handled within 30 s")
    end
    rcv:step(0.1)
  end

  -- 6. what the emulator saw (once it has logged every final answer)
  local log
  repeat
    local res = admin:request("GET", emu.url .. "/_emulator/deliveries")
    log = res and res.status == 200 and json.decode(res.body) or {}
    local delivered = 0
    for _, d in ipairs(log) do
      if d.outcome == "delivered" then
        delivered = delivered + 1
      end
    end
    if delivered >= #pending then
      break
    end
    if socket.gettime() > deadline then
      return fail("the emulator did not log every delivery within 30 s")
    end
    rcv:step(0.1)
  until false
  say("[5/6] delivery attempts, as logged by the emulator:")
  local retried = 0
  for _, d in ipairs(log) do
    if d.attempt > 1 then
      retried = retried + 1
    end
    say("      %-30s attempt %d  %s  %s%s", d.event_type, d.attempt, tostring(d.status or d.error),
        d.outcome, d.next_attempt_in and string.format(" (next attempt in %gs)", d.next_attempt_in) or "")
  end
  cleanup()
  say("")
  say("demo OK: %d events handled, %d delivery retried after a handler failure", #pending, retried)
  return true
end

local ok, err = xpcall(run, debug.traceback)
if not ok then
  fail(tostring(err))
end
os.exit(0)
