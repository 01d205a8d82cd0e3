--- Running a Lua chunk in a child process (the emulator's spawn(), the test
-- receiver): the child inherits this process's package.path/cpath, writes
-- stdout+stderr to a log file, and is waited for with bounded polling.
local sys = require "linqwebhooks.process"
local socket = require "socket"

local M = {}

--- Interpreter running this code: "luajit" under LuaJIT, else "lua5.4".
function M.default_interpreter()
  if rawget(_G, "jit") then
    return "luajit"
  end
  return "lua5.4"
end

local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

--- True while the process exists and is not a zombie waiting to be reaped.
function M.alive(pid)
  if not sys.kill(pid, 0) then
    return false
  end
  local stat = io.open("/proc/" .. pid .. "/stat", "rb")
  if stat then
    local line = stat:read("*l") or ""
    stat:close()
    if line:match("^%d+ %b() Z") then
      return false
    end
  end
  return true
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then
    return ""
  end
  local s = f:read("*a") or ""
  f:close()
  return s
end
M.read_file = read_file

--- opts: code (Lua source run by the child), ready (Lua pattern with one
-- capture, searched in the child's output), interpreter, timeout (seconds,
-- default 15), log_file (default: a temp file removed by stop()).
-- Returns { pid, match, log_file, output(), stop() } or nil, message (the
-- child's output) when it exits or times out before printing `ready`.
function M.spawn(opts)
  local interp = opts.interpreter or M.default_interpreter()
  local script = os.tmpname()
  local own_log = opts.log_file == nil
  local log = opts.log_file or os.tmpname()
  local f = assert(io.open(script, "wb"))
  f:write("package.path = ", string.format("%q", package.path), "\n",
          "package.cpath = ", string.format("%q", package.cpath), "\n",
          opts.code, "\n")
  f:close()
  -- The shell prints its pid ($$ survives the exec), then the interpreter
  -- writes into the same log file. Backgrounded, so we never block on it.
  local cmd = "sh -c " .. shell_quote("echo $$; exec " .. interp .. " " .. shell_quote(script))
    .. " >" .. shell_quote(log) .. " 2>&1 </dev/null &"
  os.execute(cmd)
  local deadline = socket.gettime() + (opts.timeout or 15)
  local pid, match
  while socket.gettime() < deadline do
    local out = read_file(log)
    pid = pid or tonumber(out:match("^(%d+)\n"))
    match = out:match(opts.ready)
    if match then
      break
    end
    if pid and not M.alive(pid) then
      break
    end
    socket.sleep(0.02)
  end
  os.remove(script)
  if not match then
    local out = read_file(log)
    if pid and M.alive(pid) then
      sys.kill(pid, "KILL")
    end
    if own_log then
      os.remove(log)
    end
    return nil, (out:gsub("^%d+\n", ""))
  end
  local child = { pid = pid, match = match, log_file = log }
  local stopped
  function child.output()
    return (read_file(log):gsub("^%d+\n", ""))
  end
  --- SIGTERM, wait up to `timeout` (default 10) seconds, then SIGKILL.
  -- Returns true when the child exited on SIGTERM. Idempotent.
  function child.stop(timeout)
    if stopped ~= nil then
      return stopped
    end
    sys.kill(pid, "TERM")
    local until_t = socket.gettime() + (timeout or 10)
    while socket.gettime() < until_t and M.alive(pid) do
      socket.sleep(0.01)
    end
    stopped = true
    if M.alive(pid) then
      sys.kill(pid, "KILL")
      stopped = false
    end
    if own_log then
      os.remove(log)
    end
    return stopped
  end
  return child
end

return M
