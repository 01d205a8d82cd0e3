-- Small helpers shared by the specs and their support servers.
local M = {}

--- The whole file, or nil, err (io.open's message) if it cannot be opened:
-- `util.read_file(p) or ""`, `assert(util.read_file(p))`. The one read_file
-- of the specs (bench/util.lua has the benchmarks' one).
function M.read_file(path)
  local f, err = io.open(path, "rb")
  if not f then
    return nil, err
  end
  local s = f:read("*a")
  f:close()
  return s
end

--- True when a file can be opened for reading.
function M.exists(path)
  local f = io.open(path, "rb")
  if f then
    f:close()
  end
  return f ~= nil
end

--- True when `sh -c` runs cmd with exit status 0 (Lua 5.4 and LuaJIT).
function M.sh(cmd)
  local ok = os.execute(cmd)
  return ok == true or ok == 0
end

--- True when the shell finds the command on PATH.
function M.have(cmd)
  return M.sh("command -v " .. cmd .. " >/dev/null 2>&1")
end

function M.write_file(path, s)
  local f = assert(io.open(path, "wb"))
  assert(f:write(s))
  f:close()
end

--- Single-quotes a string for /bin/sh.
function M.sh_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

--- A free TCP port on 127.0.0.1 (bind to port 0, read it, release it).
function M.free_port()
  local s = assert(require("socket").bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

--- Reads one HTTP/1.1 request from a LuaSocket connection: request line,
-- headers (lower-cased names) and a Content-Length body. nil at EOF.
function M.read_request(c)
  local line = c:receive("*l")
  if not line then
    return nil
  end
  local headers = {}
  while true do
    local h = c:receive("*l")
    if not h or h == "" then
      break
    end
    local k, v = h:match("^([^:]+):%s*(.-)%s*$")
    if k then
      headers[k:lower()] = v
    end
  end
  local n = tonumber(headers["content-length"] or "0") or 0
  local body = n > 0 and (c:receive(n) or "") or ""
  return line, headers, body
end

return M
