--- hooks:work{...}: runs the handlers of the deliveries stored in a
-- dispatcher's inbox. At-least-once: a delivery is acked after its handlers
-- succeed, retried with exponential backoff when one raises, moved to the
-- dead letters after `max_attempts`, and taken over by another worker when
-- this one dies (its lease expires after `visibility` seconds).
local event = require "linqwebhooks.event"
local options = require "linqwebhooks.options"

local M = {}

-- Signal primitives (SIGTERM/SIGINT flag), loaded on first use.
local function process()
  return require "linqwebhooks.process"
end

local positive = options.number{ above = 0, unit = "seconds" }
local whole = options.number{ min = 1, max = 1000000000, integer = true }

M.SCHEMA = {
  max_attempts = { types = { "number" }, check = whole },     -- 10
  backoff = { types = { "number" }, check = positive },       -- 1 s, doubling
  max_backoff = { types = { "number" }, check = positive },   -- 300 s
  visibility = { types = { "number" }, check = positive },    -- 60 s
  until_idle = "boolean",                                     -- false
  worker = "string",                                          -- "<host>:<pid>:<random>"
  poll = { types = { "number" }, check = positive },          -- 0.2 s between empty takes
  heartbeat = "boolean",                                      -- true: extend leases while handlers run
  max_jobs = { types = { "number" }, check = whole },         -- stop after this many deliveries
  clock = "function",                                         -- epoch seconds (tests)
  sleep = "function",                                         -- sleep(seconds) (tests)
}

local socket_ok, socket = pcall(require, "socket")
local default_clock = (socket_ok and socket.gettime) or os.time
local default_sleep = socket_ok and socket.sleep or function(s)
  local t = os.clock() + s
  repeat until os.clock() >= t
end

--- The host's name (HOSTNAME, /proc/sys/kernel/hostname, or "host").
function M.hostname()
  local host = os.getenv("HOSTNAME")
  if not host then
    local f = io.open("/proc/sys/kernel/hostname", "rb")
    host = f and f:read("*l")
    if f then f:close() end
  end
  return (host and host ~= "") and host or "host"
end

local function default_name(proc)
  local host = M.hostname()
  local pid = proc.getpid and proc.getpid() or 0
  return string.format("%s:%d:%06x", host, pid, math.random(0, 0xffffff))
end

-- The message of dispatch's second value: an array of error objects, an
-- error object or anything else.
local function message_of(errs)
  local e = errs
  if type(errs) == "table" and errs.message == nil and errs[1] ~= nil then
    e = errs[1]
  end
  if type(e) == "table" and e.message then
    return tostring(e.message)
  end
  local ok, s = pcall(tostring, e)
  return ok and s or "handler failed"
end

-- Runs fn with a count hook that renews the job's lease while Lua code of
-- the handlers runs (best effort: no hook runs inside a blocking C call or
-- LuaJIT-compiled code; long handlers call hooks:heartbeat() themselves).
local function with_heartbeat(inbox, job, cfg, fn)
  local clock, vis = cfg.clock, cfg.visibility
  local last = clock()
  local pf, pm, pc = debug.gethook()
  debug.sethook(function()
    local now = clock()
    if now - last >= vis / 3 then
      last = now
      pcall(inbox.extend, inbox, job, vis)
    end
  end, "", 1000)
  local ok, a, b = pcall(fn)
  if pf then
    debug.sethook(pf, pm, pc)
  else
    debug.sethook()
  end
  if not ok then
    error(a, 0)
  end
  return a, b
end

-- inbox:fail, counting a backend error (the lease then expires and the
-- delivery is taken again: nothing is lost)
local function give_up(inbox, job, msg, retry_at, stats)
  local ok, err = inbox:fail(job, msg, retry_at)
  if not ok then
    stats.errors = stats.errors + 1
    stats.last_error = err
  end
end

local function handle_job(hooks, inbox, job, cfg, stats)
  if job.attempts > cfg.max_attempts then
    -- taken over after its worker died on the last allowed attempt
    give_up(inbox, job, "attempts exhausted (the worker running attempt " .. (job.attempts - 1)
      .. " stopped)", nil, stats)
    stats.dead_lettered = stats.dead_lettered + 1
    return
  end
  local ev, derr = event.decode(job.body, job.info)
  if not ev then
    give_up(inbox, job, "invalid event: " .. tostring(derr and derr.message or derr), nil, stats)
    stats.dead_lettered = stats.dead_lettered + 1
    return
  end
  local ok, errs
  hooks._lease = { inbox = inbox, job = job, visibility = cfg.visibility }
  if cfg.heartbeat then
    ok, errs = with_heartbeat(inbox, job, cfg, function() return hooks:dispatch(ev) end)
  else
    ok, errs = hooks:dispatch(ev)
  end
  hooks._lease = nil
  if ok then
    local aok, aerr = inbox:ack(job)
    if aok then
      stats.handled = stats.handled + 1
    else
      stats.errors = stats.errors + 1
      stats.last_error = aerr
    end
    return
  end
  local msg = message_of(errs)
  if job.attempts >= cfg.max_attempts then
    give_up(inbox, job, msg, nil, stats)
    stats.dead_lettered = stats.dead_lettered + 1
  else
    local delay = cfg.backoff * 2 ^ (job.attempts - 1)
    if delay > cfg.max_backoff then
      delay = cfg.max_backoff
    end
    give_up(inbox, job, msg, cfg.clock() + delay, stats)
    stats.retried = stats.retried + 1
  end
end

--- heartbeat(hooks) -> true | false (lease lost) | nil, err: renews the
-- lease of the delivery whose handlers are running (hooks:heartbeat()).
function M.heartbeat(hooks)
  local lease = hooks._lease
  if not lease then
    return nil, "no delivery is being handled"
  end
  local ok, err = lease.inbox:extend(lease.job, lease.visibility)
  return ok, err
end

--- config(what, opts, level, defaults) -> cfg: hooks:work's options checked
-- (unknown keys raise, naming `what`) and completed with the defaults.
-- defaults: name() -> the worker name when opts.worker is absent; clock,
-- sleep, heartbeat: the environment's defaults.
function M.config(what, opts, level, defaults)
  level = (level or 1) + 1
  opts = options.check(what, opts, M.SCHEMA, level) or {}
  local heartbeat = opts.heartbeat
  if heartbeat == nil then
    heartbeat = defaults.heartbeat ~= false
  end
  return {
    max_attempts = opts.max_attempts or 10,
    backoff = opts.backoff or 1,
    max_backoff = opts.max_backoff or 300,
    visibility = opts.visibility or 60,
    poll = opts.poll or 0.2,
    heartbeat = heartbeat,
    clock = opts.clock or defaults.clock or default_clock,
    sleep = opts.sleep or defaults.sleep or default_sleep,
    name = opts.worker or defaults.name(),
    max_jobs = opts.max_jobs,
    until_idle = opts.until_idle,
  }
end

-- One turn of the loop: -> stopped reason or nil (go on).
local function turn(hooks, inbox, cfg, stop, state)
  local stopped = stop()
  if stopped then
    return stopped
  end
  if cfg.max_jobs and state.jobs >= cfg.max_jobs then
    return "max_jobs"
  end
  local stats = state.stats
  local job, err = inbox:take(cfg.name, cfg.visibility)
  if job then
    state.jobs = state.jobs + 1
    stopped = stop()
    if stopped then
      inbox:release(job) -- not started: hand it back
      stats.released = stats.released + 1
      return stopped
    end
    handle_job(hooks, inbox, job, cfg, stats)
    return nil
  end
  if err then
    stats.errors = stats.errors + 1
    stats.last_error = err
    if cfg.on_error then
      cfg.on_error(err)
    end
  elseif cfg.until_idle then
    local s = inbox:stats()
    if s and s.pending == 0 and s.in_flight == 0 then
      return "idle"
    end
  end
  cfg.sleep(cfg.poll)
  return nil
end

--- loop(hooks, inbox, cfg, stop) -> stats: takes and handles deliveries
-- until stop() returns a reason (a string), max_jobs deliveries were taken
-- or (until_idle) the inbox is empty. cfg: from M.config. With
-- cfg.on_error(err), a turn that raises (a backend's bug, not a handler:
-- handle_job catches those) is reported to it and the loop goes on after
-- cfg.poll seconds (without it the error propagates); a take that fails
-- (nil, err: e.g. Redis unreachable) is reported to it too.
function M.loop(hooks, inbox, cfg, stop)
  local state = { jobs = 0,
    stats = { handled = 0, retried = 0, dead_lettered = 0, released = 0, errors = 0 } }
  local stopped
  local on_error = cfg.on_error
  while true do
    if on_error then
      local ok, res = pcall(turn, hooks, inbox, cfg, stop, state)
      if ok then
        stopped = res
      else
        hooks._lease = nil
        state.stats.errors = state.stats.errors + 1
        state.stats.last_error = tostring(res)
        on_error(res)
        cfg.sleep(cfg.poll)
      end
    else
      stopped = turn(hooks, inbox, cfg, stop, state)
    end
    if stopped then
      break
    end
  end
  local s, serr = inbox:stats()
  s = s or { error = serr }
  for k, v in pairs(state.stats) do
    s[k] = v
  end
  s.stopped = stopped
  s.worker = cfg.name
  return s
end

--- run(hooks, inbox, opts) -> stats: the inbox's stats plus this worker's
-- counters (handled, retried, dead_lettered, released, errors) and `stopped`
-- ("SIGTERM", "SIGINT", "idle" or "max_jobs").
function M.run(hooks, inbox, opts, level)
  level = (level or 1) + 1
  local proc
  local cfg = M.config("hooks:work", opts, level, { name = function()
    proc = proc or process()
    return default_name(proc)
  end })
  proc = proc or process()
  proc.signal_watch()
  return M.loop(hooks, inbox, cfg, proc.signal_pending)
end

return M
