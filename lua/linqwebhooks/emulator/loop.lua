--- One socket.select() loop for everything the emulator does: the listening
-- socket, every client connection and every outgoing delivery attempt are
-- "actors" with a non-blocking socket; scheduled work (delivery retries) is a
-- timer. Nothing ever blocks or sleeps outside select().
--
-- actor fields: sock, want (function -> "r" | "w" | nil), on_read, on_write,
-- deadline (absolute seconds or nil), on_timeout. Callbacks get (actor, loop).
local socket = require "socket"

local Loop = {}
Loop.__index = Loop

local M = {}

function M.new()
  return setmetatable({ actors = {}, count = 0, timers = {}, tick = 0.25 }, Loop)
end

function Loop:add(actor)
  if not self.actors[actor] then
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

function Loop:cancel(timer)
  timer.cancelled = true
end

local function safe(fn, ...)
  local ok, err = pcall(fn, ...)
  if not ok then
    io.stderr:write("linqwebhooks emulator: internal error: ", tostring(err), "\n")
  end
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
  local r, w = socket.select(recvt, sendt, wait)
  for _, s in ipairs(r or {}) do
    local a = by_sock[s]
    if a and self.actors[a] then
      safe(a.on_read, a, self)
    end
  end
  for _, s in ipairs(w or {}) do
    local a = by_sock[s]
    if a and self.actors[a] then
      safe(a.on_write, a, self)
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
      safe(a.on_timeout, a, self)
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
      safe(t.fn)
    end
  end
end

return M
