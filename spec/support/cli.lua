--- Running bin/linqwh as a user would, for spec/80-cli_spec.lua and
-- spec/81-cli_inbox_spec.lua: real processes with this run's interpreter and
-- module paths (support.child), stdout and stderr captured separately.
--
--   local cli = require "support.cli"
--   local code, out, err = cli.run({ "sign", "--secret", s }, "body on stdin")
--   local p = cli.spawn({ "listen", "--secret", s, "--port", "0" }, "listening on (http://%S+)", "err")
--   p.match, p.stdout(), p.stderr(), p.stop()   -- stop: SIGTERM, bounded wait, SIGKILL
--   cli.outputs   -- every stdout/stderr text seen so far (for the no-secret check)
local child = require "support.child"
local socket = require "socket"
local util = require "support.util"

local M = { outputs = {} }

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
M.q = q

--- The whole file, "" when it does not exist (yet).
local function read(path)
  return util.read_file(path) or ""
end
M.read = read

local function write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end
M.write = write

-- env -u NAME ... NAME=value ... (unsets must come first)
local function env_prefix(env)
  local unset, set = {}, {}
  for k, v in pairs(env or {}) do
    if v == false then
      unset[#unset + 1] = " -u " .. k
    else
      set[#set + 1] = " " .. k .. "=" .. q(v)
    end
  end
  return "env" .. table.concat(unset) .. table.concat(set)
end

local function command(args)
  local parts = { child.lua(), "bin/linqwh" }
  for _, a in ipairs(args) do
    parts[#parts + 1] = q(a)
  end
  return table.concat(parts, " ")
end

--- Runs linqwh to completion (bounded by `timeout`, default 30 s) with
-- `stdin` (string, default empty) and extra environment `env` ({ NAME = value
-- | false to unset }). Returns exit code, stdout, stderr.
function M.run(args, stdin, env, timeout)
  local inf, outf, errf = os.tmpname(), os.tmpname(), os.tmpname()
  write(inf, stdin or "")
  local prefix = env_prefix(env)
  local cmd = "timeout -s KILL " .. (timeout or 30) .. " " .. prefix .. " " .. command(args)
    .. " <" .. q(inf) .. " >" .. q(outf) .. " 2>" .. q(errf) .. "; echo $?"
  local p = assert(io.popen(cmd))
  local rc = tonumber((p:read("*a")):match("(%d+)%s*$"))
  p:close()
  local out, err = read(outf), read(errf)
  os.remove(inf)
  os.remove(outf)
  os.remove(errf)
  M.outputs[#M.outputs + 1] = out
  M.outputs[#M.outputs + 1] = err
  return rc, out, err
end

local function alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat", "rb")
  if not f then
    return false
  end
  local line = f:read("*l") or ""
  f:close()
  return not line:match("^%d+ %b() Z")
end
M.alive = alive

local spawned = {}

--- Starts linqwh in the background; waits (bounded, 15 s) until `ready` (a
-- pattern with one capture) appears in its stdout ("out") or stderr ("err").
function M.spawn(args, ready, stream, env)
  local outf, errf, pidf = os.tmpname(), os.tmpname(), os.tmpname()
  local prefix = env_prefix(env)
  local inner = "echo $$ > " .. q(pidf) .. "; exec " .. prefix .. " " .. command(args)
    .. " >" .. q(outf) .. " 2>" .. q(errf) .. " </dev/null"
  os.execute("sh -c " .. q(inner) .. " &")
  local p = { out_file = outf, err_file = errf }
  function p.stdout() return read(outf) end
  function p.stderr() return read(errf) end
  local deadline = socket.gettime() + 15
  while socket.gettime() < deadline do
    p.pid = p.pid or tonumber(read(pidf):match("%d+"))
    p.match = (stream == "out" and read(outf) or read(errf)):match(ready)
    if p.match or (p.pid and not alive(p.pid)) then
      break
    end
    socket.sleep(0.02)
  end
  os.remove(pidf)
  local stopped = false
  --- SIGTERM (or `sig`), waits up to 10 s, then SIGKILL. Returns true when
  -- it exited by itself. Idempotent.
  function p.stop(sig)
    if stopped then
      return true
    end
    stopped = true
    if not p.pid then
      return false
    end
    os.execute("kill -" .. (sig or "TERM") .. " " .. p.pid .. " 2>/dev/null")
    local until_t = socket.gettime() + 10
    while socket.gettime() < until_t and alive(p.pid) do
      socket.sleep(0.02)
    end
    local ok = not alive(p.pid)
    if not ok then
      os.execute("kill -KILL " .. p.pid .. " 2>/dev/null")
    end
    M.outputs[#M.outputs + 1] = read(outf)
    M.outputs[#M.outputs + 1] = read(errf)
    return ok
  end
  function p.cleanup()
    p.stop()
    os.remove(outf)
    os.remove(errf)
  end
  spawned[#spawned + 1] = p
  if not p.match then
    local msg = "linqwh " .. tostring(args[1]) .. " did not start: " .. read(outf) .. read(errf)
    p.cleanup()
    error(msg, 2)
  end
  return p
end

--- Stops every process spawn started (teardown).
function M.stop_all()
  for _, p in ipairs(spawned) do
    p.cleanup()
  end
  spawned = {}
end

--- Polls until fn() returns a true value (bounded); returns it or nil.
function M.wait_for(fn, secs)
  local deadline = socket.gettime() + (secs or 10)
  repeat
    local v = fn()
    if v then
      return v
    end
    socket.sleep(0.02)
  until socket.gettime() > deadline
  return nil
end

return M
