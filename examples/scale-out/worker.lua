--- A worker of the scale-out example: runs the handlers of stored
-- deliveries until SIGTERM/SIGINT, then prints its counters.
--   lua5.4 examples/scale-out/worker.lua NAME
local app = dofile((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/app.lua")
local name = arg[1] or "worker"
local inbox = app.inbox()
local hooks = app.hooks(inbox, name)
local s = hooks:work{ worker = name, visibility = 30, poll = 0.05 }
io.stdout:write(string.format("%-9s stopped (%s): handled %d, retried %d, dead-lettered %d\n",
  name, tostring(s.stopped), s.handled, s.retried, s.dead_lettered))
inbox:close()
