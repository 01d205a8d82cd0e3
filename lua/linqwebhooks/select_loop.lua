--- One non-blocking socket.select() loop: every socket (listening socket,
-- client connection, outgoing request) is an "actor"; scheduled work is a
-- timer. Nothing blocks or sleeps outside select(). Used by the receiver and
-- the emulator (through linqwebhooks.http_server).
--
-- actor fields: sock, want (function -> "r" | "w" | nil), on_read, on_write,
-- deadline (absolute seconds or nil), on_timeout. Callbacks get (actor, loop);
-- an error in one is logged and never stops the loop.
--
-- select() works on descriptor sets of FD_SETSIZE (1024) entries: the loop
-- refuses actors whose descriptor does not fit (add -> nil, err), and if
-- select() raises anyway the error is logged, the offending actors are timed
-- out and the loop goes on.
local socket = require "socket"

local Loop = {}
Loop.__index = Loop

local M = {}

--- Highest descriptor number the loop accepts (FD_SETSIZE - 1, minus a margin).
M.MAX_FD = 1000

local function stderr_log(msg)
  io.stderr:write("linqwebhooks: ", msg, "\n")
end

--- select_loop.new{ log = fn(msg) } (log default: stderr)
function M.new(opts)
  return setmetatable({ actors = {}, count = 0, timers = {}, tick = 0.25,
                        log = opts and opts.log or stderr_log }, Loop)
end

local function fd_of(sock)
  local ok, fd = pcall(function() return sock:getfd() end)
  return ok and tonumber(fd) or nil
end

--- Adds an actor. Returns it, or nil, "descriptor too large" when its socket
-- cannot be watched by select() (the caller closes it).
function Loop:add(actor)
  if not self.actors[actor] then
    local fd = actor.sock and fd_of(actor.sock)
    if fd and fd > M.MAX_FD then
      return nil, "descriptor too large for select()"
    end
    self.actors[actor] = true
    self.count = self.count + 1
  end
  return actor
end

function Loop:remove(actor)
  if self.actors[actor] then
    self.actors[actor] = nil
    self.count = self.count - 1
  end
end

--- Runs fn() after `delay` seconds (from the loop, never re-entrantly).
function Loop:after(delay, fn)
  local t = { at = socket.gettime() + math.max(delay, 0), fn = fn }
  self.timers[#self.timers + 1] = t
  return t
end

function Loop.cancel(_, timer)
  timer.cancelled = true
end

function Loop:safe(fn, ...)
  local ok, err = pcall(fn, ...)
  if not ok then
    self.log("internal error: " .. tostring(err))
  end
end

-- select() raised: drop (time out) every actor whose socket it cannot watch.
local function prune(self)
  local bad = {}
  for a in pairs(self.actors) do
    local fd = a.sock and fd_of(a.sock)
    if fd and fd > M.MAX_FD then
      bad[#bad + 1] = a
    end
  end
  for _, a in ipairs(bad) do
    if self.actors[a] then
      a.deadline = nil
      if a.on_timeout then
        self:safe(a.on_timeout, a, self)
      end
      if self.actors[a] then
        self:remove(a)
        pcall(a.sock.close, a.sock)
      end
    end
  end
  return #bad
end

--- One iteration: waits at most `max_wait` seconds.
function Loop:step(max_wait)
  local now = socket.gettime()
  local wait = max_wait or self.tick
  local recvt, sendt, by_sock = {}, {}, {}
  for a in pairs(self.actors) do
    local w = a.want and a:want() or nil
    if w == "r" then
      recvt[#recvt + 1] = a.sock
      by_sock[a.sock] = a
    elseif w == "w" then
      sendt[#sendt + 1] = a.sock
      by_sock[a.sock] = a
    end
    if a.deadline and a.deadline - now < wait then
      wait = a.deadline - now
    end
  end
  for _, t in ipairs(self.timers) do
    if t.at - now < wait then
      wait = t.at - now
    end
  end
  if wait < 0 then
    wait = 0
  end
  local ok, r, w = pcall(socket.select, recvt, sendt, wait)
  if not ok then
    self.log("select() failed: " .. tostring(r) .. " (dropped " .. prune(self) .. " connections)")
    r, w = nil, nil
    socket.sleep(math.min(wait, 0.01))
  end
  for _, s in ipairs(r or {}) do
    local a = by_sock[s]
    if a and self.actors[a] then
      self:safe(a.on_read, a, self)
    end
  end
  for _, s in ipairs(w or {}) do
    local a = by_sock[s]
    if a and self.actors[a] then
      self:safe(a.on_write, a, self)
    end
  end
  now = socket.gettime()
  local expired = {}
  for a in pairs(self.actors) do
    if a.deadline and a.deadline <= now then
      expired[#expired + 1] = a
    end
  end
  for _, a in ipairs(expired) do
    if self.actors[a] then
      a.deadline = nil
      self:safe(a.on_timeout, a, self)
    end
  end
  if #self.timers > 0 then
    local due, keep = {}, {}
    for _, t in ipairs(self.timers) do
      if t.cancelled then -- luacheck: ignore 542
      elseif t.at <= now then
        due[#due + 1] = t
      else
        keep[#keep + 1] = t
      end
    end
    self.timers = keep
    table.sort(due, function(x, y) return x.at < y.at end)
    for _, t in ipairs(due) do
      self:safe(t.fn)
    end
  end
end

--- Closes every actor's socket and forgets them (and the timers).
function Loop:close_all()
  for a in pairs(self.actors) do
    if a.sock then
      pcall(a.sock.close, a.sock)
    end
    self:remove(a)
  end
  self.timers = {}
end

return M
