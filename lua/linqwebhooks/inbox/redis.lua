--- The durable inbox on Redis Streams, for receivers and workers on many
-- hosts: `linq.inbox.redis{ url, prefix = "linqwh:", ttl = 86400, clock, timeout, ... }`.
-- Implements the inbox backend interface (notes: INBOX-CONTRACT; the SQLite
-- backend implements the same one).
--
-- Layout (P = prefix .. "inbox:"):
--   P.."s"          the stream of ready deliveries (entry fields: k = dedupe key),
--                   consumer group "workers", one consumer per worker name
--   P.."d:"..key    a hash per delivery: id, event_type, body, headers (JSON),
--                   info (JSON), received_at, attempts, state (pending |
--                   in_flight | done | dead), entry (its stream entry), worker, error
--   P.."id:"..id    event id -> key, when the key is not the id (replay by id)
--   P.."due"        sorted set: key -> when its stream entry may be taken
--                   (again): an in-flight delivery's lease deadline, a failed
--                   one's retry time, 0 for a released one (ms)
--   P.."done", P.."dead"   sorted sets: key -> when it got there
--   P.."stats"      hash: pending, in_flight counters
-- Every operation is one Lua script (EVALSHA): atomic, one round trip. put
-- sets the delivery's hash only if it does not exist (the dedupe key) and
-- XADDs it in the same script. take first takes a due delivery (lease run
-- out: its worker died; retry time reached; released) by XCLAIMing its entry
-- from the group's pending entries, else reads a new entry (XREADGROUP ... >),
-- so deliveries come oldest first. ack and dead-lettering XACK and XDEL the
-- entry; a retry keeps it pending in the group until it is due.
--
-- Time: leases and retry times use the injectable `clock` (epoch seconds)
-- when given, else Redis's own TIME, so hosts with skewed clocks agree on
-- lease expiry. (A "due" sorted set rather than XAUTOCLAIM's idle time: the
-- visibility is the one the taker chose, extend() renews it exactly, and tests
-- can move the clock.)
-- Done deliveries (and their dedupe) are kept `ttl` seconds (PEXPIRE); dead
-- ones until replayed. AOF persistence (appendonly yes) is the operator's
-- choice: with appendfsync everysec a power loss may lose the last second.
-- In OpenResty the calls use cosockets (see linqwebhooks.redis).
local backend = require "linqwebhooks.redis_backend"
local json = require "linqwebhooks.json"

local M = {}

local Inbox = {}
Inbox.__index = Inbox
M.Inbox = Inbox

M.SCHEMA = backend.schema({
  url = "string",
  prefix = "string",
  ttl = { types = { "number" }, check = backend.seconds },
  clock = "function",
})

--- linq.inbox.redis{ url = "redis://127.0.0.1:6379/0", prefix = "linqwh:", ttl = 86400,
--   clock = nil, timeout = 5, ... } -> inbox (does not connect yet)
function M.new(opts, level)
  level = (level or 1) + 1
  local client = backend.client("linq.inbox.redis", opts, M.SCHEMA, level)
  return setmetatable({
    _redis = client,
    _p = (opts.prefix or "linqwh:") .. "inbox:",
    _ttl_ms = math.floor((opts.ttl or 86400) * 1000 + 0.5),
    _clock = opts.clock,
    _closed = false,
  }, Inbox)
end

Inbox.__tostring = function(self)
  return backend.describe("inbox.redis", self._redis, self._p:sub(1, -7))
end

-- Shared by the scripts: key names, "now" and the consumer group.
local HEAD = [[
local P = ARGV[1]
local S = P .. 's'
local G = 'workers'
local now
if ARGV[2] ~= '' then
  now = tonumber(ARGV[2])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function ensure_group()
  if redis.call('EXISTS', S) == 0 then
    redis.pcall('XGROUP', 'CREATE', S, G, '0', 'MKSTREAM')
  end
end
local function owned(d, entry, worker)
  local f = redis.call('HMGET', d, 'state', 'entry', 'worker')
  return f[1] == 'in_flight' and f[2] == entry and f[3] == worker
end
]]

local PUT = HEAD .. [[
local key, id = ARGV[3], ARGV[4]
local d = P .. 'd:' .. key
if redis.call('EXISTS', d) == 1 then
  return 0
end
ensure_group()
local e = redis.call('XADD', S, '*', 'k', key)
redis.call('HSET', d, 'id', id, 'event_type', ARGV[5], 'body', ARGV[6], 'headers', ARGV[7],
  'info', ARGV[8], 'received_at', ARGV[9], 'attempts', 0, 'state', 'pending', 'entry', e)
if id ~= key then
  redis.call('SET', P .. 'id:' .. id, key)
end
redis.call('HINCRBY', P .. 'stats', 'pending', 1)
return 1
]]

local TAKE = HEAD .. [[
local worker, vis = ARGV[3], tonumber(ARGV[4])
for _ = 1, 20 do
  local key, entry, d
  local exp = redis.call('ZRANGEBYSCORE', P .. 'due', '-inf', now, 'LIMIT', 0, 1)
  if exp[1] then
    key = exp[1]
    d = P .. 'd:' .. key
    local f = redis.call('HMGET', d, 'state', 'entry')
    entry = f[2]
    if f[1] ~= 'pending' and f[1] ~= 'in_flight' then
      redis.call('ZREM', P .. 'due', key)
      key = nil
    elseif not redis.call('XCLAIM', S, G, worker, 0, entry, 'JUSTID')[1] then
      -- its entry is gone (trimmed by hand?): queue the delivery again
      redis.call('ZREM', P .. 'due', key)
      if f[1] == 'in_flight' then
        redis.call('HINCRBY', P .. 'stats', 'in_flight', -1)
        redis.call('HINCRBY', P .. 'stats', 'pending', 1)
      end
      ensure_group()
      redis.call('HSET', d, 'state', 'pending', 'entry', redis.call('XADD', S, '*', 'k', key))
      redis.call('HDEL', d, 'worker')
      key = nil
    elseif f[1] == 'pending' then -- released: counted as pending until now
      redis.call('HINCRBY', P .. 'stats', 'pending', -1)
      redis.call('HINCRBY', P .. 'stats', 'in_flight', 1)
    end
  else
    ensure_group()
    local r = redis.call('XREADGROUP', 'GROUP', G, worker, 'COUNT', 1, 'STREAMS', S, '>')
    if not r or not r[1] or not r[1][2][1] then
      return false
    end
    local ent = r[1][2][1]
    entry, key = ent[1], ent[2][2]
    d = P .. 'd:' .. key
    local f = redis.call('HMGET', d, 'state', 'entry')
    if f[1] == 'pending' and f[2] == entry then
      redis.call('HINCRBY', P .. 'stats', 'pending', -1)
      redis.call('HINCRBY', P .. 'stats', 'in_flight', 1)
    else -- a stale entry (its delivery moved on or expired)
      redis.call('XACK', S, G, entry)
      redis.call('XDEL', S, entry)
      key = nil
    end
  end
  if key then
    redis.call('HINCRBY', d, 'attempts', 1)
    redis.call('HSET', d, 'state', 'in_flight', 'worker', worker, 'entry', entry)
    redis.call('ZADD', P .. 'due', now + vis, key)
    local out = redis.call('HGETALL', d)
    out[#out + 1] = 'key'
    out[#out + 1] = key
    return out
  end
end
return false
]]

-- The prologue of the scripts that act on a taken delivery (ARGV[3..5]: key,
-- its stream entry, the worker): they do nothing unless it still holds it.
local OWNED = HEAD .. [[
local key, entry, worker = ARGV[3], ARGV[4], ARGV[5]
local d = P .. 'd:' .. key
if not owned(d, entry, worker) then
  return 0
end
]]

local EXTEND = OWNED .. [[
redis.call('ZADD', P .. 'due', now + tonumber(ARGV[6]), key)
return 1
]]

local ACK = OWNED .. [[
local ttl = tonumber(ARGV[6])
redis.call('XACK', S, G, entry)
redis.call('XDEL', S, entry)
redis.call('ZREM', P .. 'due', key)
redis.call('HSET', d, 'state', 'done')
redis.call('HDEL', d, 'worker')
redis.call('PEXPIRE', d, ttl)
local id = redis.call('HGET', d, 'id')
if id ~= key then
  redis.call('PEXPIRE', P .. 'id:' .. id, ttl)
end
redis.call('ZADD', P .. 'done', now, key)
redis.call('ZREMRANGEBYSCORE', P .. 'done', '-inf', now - ttl)
redis.call('HINCRBY', P .. 'stats', 'in_flight', -1)
return 1
]]

local FAIL = OWNED .. [[
redis.call('HSET', d, 'error', ARGV[6])
redis.call('HDEL', d, 'worker')
redis.call('HINCRBY', P .. 'stats', 'in_flight', -1)
if ARGV[7] ~= '' then
  -- the entry stays pending in the group; taken again (XCLAIM) when due
  redis.call('HSET', d, 'state', 'pending')
  redis.call('ZADD', P .. 'due', tonumber(ARGV[7]), key)
  redis.call('HINCRBY', P .. 'stats', 'pending', 1)
else
  redis.call('XACK', S, G, entry)
  redis.call('XDEL', S, entry)
  redis.call('ZREM', P .. 'due', key)
  redis.call('HSET', d, 'state', 'dead')
  redis.call('ZADD', P .. 'dead', now, key)
end
return 1
]]

local RELEASE = OWNED .. [[
redis.call('HINCRBY', d, 'attempts', -1)
redis.call('HSET', d, 'state', 'pending')
redis.call('HDEL', d, 'worker')
redis.call('ZADD', P .. 'due', 0, key) -- taken first, by the takeover path
redis.call('HINCRBY', P .. 'stats', 'in_flight', -1)
redis.call('HINCRBY', P .. 'stats', 'pending', 1)
return 1
]]

local STATS = HEAD .. [[
redis.call('ZREMRANGEBYSCORE', P .. 'done', '-inf', now - tonumber(ARGV[3]))
local s = redis.call('HMGET', P .. 'stats', 'pending', 'in_flight')
return { tonumber(s[1]) or 0, tonumber(s[2]) or 0, redis.call('ZCARD', P .. 'done'),
  redis.call('ZCARD', P .. 'dead') }
]]

local DEAD = HEAD .. [[
local out = {}
for _, key in ipairs(redis.call('ZRANGE', P .. 'dead', 0, -1)) do
  local f = redis.call('HMGET', P .. 'd:' .. key, 'id', 'event_type', 'attempts', 'error')
  out[#out + 1] = { key, f[1], f[2], f[3], f[4] }
end
return out
]]

local REPLAY = HEAD .. [[
local id = ARGV[3]
local key = redis.call('GET', P .. 'id:' .. id) or id
local d = P .. 'd:' .. key
local state = redis.call('HGET', d, 'state')
if not state then
  return 'unknown'
end
if state ~= 'dead' and state ~= 'done' then
  return state
end
ensure_group()
local e = redis.call('XADD', S, '*', 'k', key)
redis.call('HSET', d, 'state', 'pending', 'attempts', 0, 'entry', e)
redis.call('HDEL', d, 'error', 'worker')
redis.call('PERSIST', d)
redis.call('PERSIST', P .. 'id:' .. id)
redis.call('ZREM', P .. 'dead', key)
redis.call('ZREM', P .. 'done', key)
redis.call('HINCRBY', P .. 'stats', 'pending', 1)
return 'ok'
]]

local function now_arg(self)
  local c = self._clock
  if not c then
    return ""
  end
  local t = c()
  if type(t) ~= "number" then
    error("linq.inbox.redis: clock must return a number, got " .. type(t), 3)
  end
  return string.format("%d", math.floor(t * 1000))
end

local function run(self, script, ...)
  if self._closed then
    return nil, "linq.inbox.redis: closed"
  end
  local args = { self._p, now_arg(self), ... }
  local v, err = self._redis:eval(script, {}, args)
  if v == nil then
    return nil, tostring(err)
  end
  return v
end

local function check(what, name, v, t)
  if type(v) ~= t then
    error("inbox:" .. what .. ": argument '" .. name .. "' must be a " .. t .. ", got " .. type(v), 3)
  end
end

local function num_str(n)
  if math.type and math.type(n) == "integer" then
    return tostring(n)
  end
  if n == math.floor(n) and n > -1e15 and n < 1e15 then
    return string.format("%d", n)
  end
  return string.format("%.17g", n)
end

function Inbox:put(rec)
  check("put", "rec", rec, "table")
  check("put", "rec.key", rec.key, "string")
  check("put", "rec.id", rec.id, "string")
  check("put", "rec.event_type", rec.event_type, "string")
  check("put", "rec.body", rec.body, "string")
  if rec.key == "" or rec.id == "" then
    error("inbox:put: argument 'rec.key' and 'rec.id' must not be empty", 2)
  end
  local headers, herr = json.encode(rec.headers or {})
  local info, ierr = json.encode(rec.info or {})
  if not headers or not info then
    error("inbox:put: argument 'rec.headers'/'rec.info' cannot be stored: " .. tostring(herr or ierr), 2)
  end
  local received = rec.received_at
  if received == nil then
    received = self._clock and self._clock() or os.time()
  end
  check("put", "rec.received_at", received, "number")
  local r, err = run(self, PUT, rec.key, rec.id, rec.event_type, rec.body, headers, info,
    num_str(received))
  if r == nil then
    return nil, err
  end
  if r == 1 then
    return true
  end
  return false, "duplicate"
end

local function job_from(flat, worker)
  local f = {}
  for i = 1, #flat, 2 do
    f[flat[i]] = flat[i + 1]
  end
  return {
    key = f.key,
    id = f.id,
    event_type = f.event_type,
    body = f.body,
    headers = json.decode(f.headers or "{}") or {},
    info = json.decode(f.info or "{}") or {},
    attempts = tonumber(f.attempts),
    received_at = tonumber(f.received_at),
    token = f.entry .. " " .. worker,
  }
end

local function visibility_ms(what, v)
  if type(v) ~= "number" or v ~= v or v <= 0 or v >= 2147483 then
    error("inbox:" .. what .. ": argument 'visibility' must be a number of seconds > 0, got "
      .. tostring(v), 3)
  end
  return math.max(1, math.floor(v * 1000 + 0.5))
end

function Inbox:take(worker, visibility)
  check("take", "worker", worker, "string")
  local vis = visibility_ms("take", visibility)
  local r, err = run(self, TAKE, worker, vis)
  if r == nil then
    return nil, err
  end
  if r == false then
    return nil
  end
  return job_from(r, worker)
end

local function token_parts(what, job)
  if type(job) ~= "table" or type(job.token) ~= "string" or type(job.key) ~= "string" then
    error("inbox:" .. what .. ": argument 'job' must be a job returned by take()", 3)
  end
  local entry, worker = job.token:match("^(%S+) (.*)$")
  if not entry then
    error("inbox:" .. what .. ": argument 'job' has a bad token", 3)
  end
  return entry, worker
end

function Inbox:extend(job, visibility)
  local entry, worker = token_parts("extend", job)
  local vis = visibility_ms("extend", visibility)
  local r, err = run(self, EXTEND, job.key, entry, worker, vis)
  if r == nil then
    return nil, err
  end
  return r == 1
end

function Inbox:ack(job)
  local entry, worker = token_parts("ack", job)
  local r, err = run(self, ACK, job.key, entry, worker, self._ttl_ms)
  if r == nil then
    return nil, err
  end
  return true
end

function Inbox:fail(job, errmsg, retry_at)
  local entry, worker = token_parts("fail", job)
  if retry_at ~= nil and (type(retry_at) ~= "number" or retry_at ~= retry_at) then
    error("inbox:fail: argument 'retry_at' must be a number (epoch seconds) or nil", 2)
  end
  local r, err = run(self, FAIL, job.key, entry, worker, tostring(errmsg or ""),
    retry_at and string.format("%d", math.floor(retry_at * 1000)) or "")
  if r == nil then
    return nil, err
  end
  return true
end

function Inbox:release(job)
  local entry, worker = token_parts("release", job)
  local r, err = run(self, RELEASE, job.key, entry, worker)
  if r == nil then
    return nil, err
  end
  return true
end

function Inbox:stats()
  local r, err = run(self, STATS, self._ttl_ms)
  if r == nil then
    return nil, err
  end
  return { pending = r[1], in_flight = r[2], done = r[3], dead = r[4] }
end

function Inbox:dead()
  local r, err = run(self, DEAD)
  if r == nil then
    return nil, err
  end
  local out = {}
  for i, row in ipairs(r) do
    out[i] = {
      key = row[1],
      id = row[2] or nil,
      event_type = row[3] or nil,
      attempts = tonumber(row[4]) or 0,
      error = row[5] or nil,
    }
  end
  return out
end

function Inbox:replay(id)
  check("replay", "id", id, "string")
  local r, err = run(self, REPLAY, id)
  if r == nil then
    return nil, err
  end
  if r == "ok" then
    return true
  end
  if r == "unknown" then
    return nil, "unknown delivery: " .. id
  end
  return nil, "delivery " .. id .. " is " .. r .. " (only dead or done deliveries can be replayed)"
end

function Inbox:close()
  if not self._closed then
    self._closed = true
    self._redis:close()
  end
end

Inbox.__close = Inbox.close
Inbox.__gc = Inbox.close

return M
