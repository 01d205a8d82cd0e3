--- The durable inbox: accept now, process later, nothing lost.
--
--   local inbox = linq.inbox.sqlite{ path = "linq-inbox.db" }   -- one host
--   local inbox = linq.inbox.redis{ url = "redis://127.0.0.1:6379/0" } -- many hosts
--   local hooks = linq.webhooks{ secret = secret, inbox = inbox }
--   hooks:handle(body, headers)  -- verifies, stores, answers 200 (503: not stored)
--   hooks:work{ max_attempts = 10, backoff = 1, visibility = 60 } -- runs the handlers
--
-- ## The inbox interface (every backend implements exactly this)
--
--   inbox:put(rec) -> true | false, "duplicate" | nil, err
--     rec = { key, id, event_type, body, headers, info, received_at }; stores a
--     new pending delivery atomically and durably; a key ever stored before
--     (pending, in flight, done, dead) -> false, "duplicate".
--   inbox:take(worker, visibility) -> job | nil (nothing ready) | nil, err
--     the oldest ready pending delivery, or one whose worker's lease expired,
--     now in flight for `worker` until now + visibility. job = { key, id,
--     event_type, body, headers, info, attempts (this one included),
--     received_at, token }.
--   inbox:extend(job, visibility) -> true | false (lease lost) | nil, err
--   inbox:ack(job) -> true | nil, err            (done; kept `ttl` for dedupe)
--   inbox:fail(job, errmsg, retry_at) -> true | nil, err
--     retry_at = epoch seconds of the next attempt, nil = dead letter.
--   inbox:release(job) -> true | nil, err        (pending again, attempt not counted)
--   inbox:stats() -> { pending, in_flight, done, dead }
--   inbox:dead() -> { { id, key, event_type, attempts, error }, ... }
--   inbox:replay(id) -> true | nil, err          (dead or done -> pending, attempts 0)
--   inbox:close()                                (idempotent; also __gc/__close)
local M = {}

M.METHODS = { "put", "take", "extend", "ack", "fail", "release", "stats", "dead", "replay", "close" }

--- linq.inbox.sqlite{ path, clock, busy_timeout, synchronous, ttl } -> inbox | nil, err
function M.sqlite(opts, level)
  local inbox, err = require("linqwebhooks.inbox.sqlite").new(opts, (level or 1) + 1)
  return inbox, err
end

--- linq.inbox.redis{ url, prefix, clock, ... } -> inbox | nil, err
-- (the Redis Streams backend, loaded on first use)
function M.redis(opts, level)
  local inbox, err = require("linqwebhooks.inbox.redis").new(opts, (level or 1) + 1)
  return inbox, err
end

--- True when v looks like an inbox (has every interface method).
function M.is_inbox(v)
  for _, m in ipairs(M.METHODS) do
    local ok, f = pcall(function() return v[m] end)
    if not ok or type(f) ~= "function" then
      return false, "must be an inbox (linq.inbox.sqlite{...} or linq.inbox.redis{...}): missing method '"
        .. m .. "'"
    end
  end
  return true
end

--- The bounded dedupe key of an event id (the same key the dedupe stores
-- get): the id itself up to 128 bytes, else "sha256:" .. hex digest.
M.key = require("linqwebhooks.store").key

--- Epoch seconds (fractional when LuaSocket is there).
local gettime
do
  local ok, socket = pcall(require, "socket")
  gettime = (ok and type(socket) == "table" and socket.gettime) or os.time
end
M.now = function() return gettime() end

-- The signature headers kept with a stored delivery (lowercase names).
local KEEP = {
  ["webhook-id"] = true, ["webhook-timestamp"] = true, ["webhook-signature"] = true,
  ["x-webhook-timestamp"] = true, ["x-webhook-signature"] = true,
}

--- The record inbox:put stores for a verified, decoded event.
function M.record(ev, body, headers, info)
  local kept = {}
  for k, v in pairs(headers) do
    if type(k) == "string" and KEEP[k:lower()] and (type(v) == "string" or type(v) == "table") then
      if type(v) == "table" then
        local list = {}
        for i = 1, #v do
          list[i] = tostring(v[i])
        end
        v = list
      end
      kept[k:lower()] = v
    end
  end
  return {
    key = M.key(ev.id),
    id = ev.id,
    event_type = ev.type,
    body = body,
    headers = kept,
    info = { scheme = info.scheme, key_index = info.key_index, id = info.id,
             timestamp = info.timestamp },
    received_at = gettime(),
  }
end

--- The dispatcher's answer for a verified, decoded delivery when it has an
-- inbox: 200 stored, 200 duplicate, 503 not stored (Linq retries).
function M.accept(inbox, ev, body, headers, info)
  local errors = require "linqwebhooks.errors"
  local pok, ok, err = pcall(function()
    return inbox:put(M.record(ev, body, headers, info))
  end)
  if not pok then
    err, ok = ok, nil
  end
  if ok then
    return { status = 200, body = "stored", event = ev, duplicate = false }
  elseif ok == false then
    return { status = 200, body = "duplicate", event = ev, duplicate = true }
  end
  return { status = 503, body = "inbox unavailable, retry later", event = ev, duplicate = false,
           err = errors.new({ kind = "store", reason = "store_failed",
                              message = "inbox put failed: " .. tostring(err) }) }
end

return M
