--- A small loopback webhook receiver for delivery specs, run as a child
-- process. It records every request (method, target, headers, raw body) as
-- one JSON line in a file and answers with scripted statuses.
--
--   local receiver = require "spec.support.receiver"   (or dofile)
--   local r = receiver.spawn{ statuses = { 500, 500, 200 } }  -- last one repeats; default { 200 }
--   r.url            -- "http://127.0.0.1:PORT"
--   r.requests()     -- array of { method, target, headers = {lower-case name = value}, body }
--   r.wait(n, secs)  -- polls until n requests were recorded (bounded), returns r.requests()
--   r.stop()
--
--   receiver.http(method, url, headers, body) -- raw one-shot HTTP/1.1 client (LuaSocket,
--     10 s timeout) -> { status, headers, body, json } or nil, err
--
-- Child mode (what spawn runs): receiver.serve(record_path, statuses, delay, parent_pid)
-- delay (seconds) makes every answer wait, to exercise delivery timeouts.
local M = {}

function M.serve(record_path, statuses, delay, parent_pid)
  local socket = require "socket"
  local json = require "linqwebhooks.json"
  local alive = require("linqwebhooks.emulator.process").alive
  local server = assert(socket.bind("127.0.0.1", 0))
  server:settimeout(0.5)
  local _, port = server:getsockname()
  io.stdout:write("receiver listening on http://127.0.0.1:", port, "\n")
  io.stdout:flush()
  local n = 0
  while not parent_pid or alive(parent_pid) do -- never outlive the spec run
    local c = server:accept()
    if c then
      c:settimeout(5)
      local line, headers, body = require("support.util").read_request(c)
      if line then
        n = n + 1
        local status = statuses[n] or statuses[#statuses] or 200
        local method, target = line:match("^(%S+) (%S+)")
        local f = assert(io.open(record_path, "ab"))
        f:write(assert(json.encode({ method = method, target = target, headers = headers,
                                     body = body, status = status })), "\n")
        f:close()
        if delay and delay > 0 then
          socket.sleep(delay)
        end
        c:send("HTTP/1.1 " .. status .. " X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
      end
      c:close()
    end
  end
end

local function script_dir()
  local src = debug.getinfo(1, "S").source
  return src:sub(2):match("^(.*)/[^/]*$") or "."
end

function M.spawn(opts)
  opts = opts or {}
  local process = require "linqwebhooks.emulator.process"
  local json = require "linqwebhooks.json"
  local socket = require "socket"
  local record = os.tmpname()
  local statuses = {}
  for i, s in ipairs(opts.statuses or { 200 }) do
    statuses[i] = string.format("%d", s)
  end
  local code = string.format("dofile(%q).serve(%q, {%s}, %s, %d)", script_dir() .. "/receiver.lua",
    record, table.concat(statuses, ","), tostring(opts.delay or 0),
    require("linqwebhooks.process").getpid())
  local child, out = process.spawn({ code = code, ready = "receiver listening on (http://%S+)\n" })
  if not child then
    os.remove(record)
    error("receiver did not start: " .. tostring(out), 2)
  end
  local r = { url = child.match, pid = child.pid }
  function r.requests()
    local list = {}
    local f = io.open(record, "rb")
    if not f then
      return list
    end
    for line in f:lines() do
      list[#list + 1] = assert(json.decode(line))
    end
    f:close()
    return list
  end
  function r.wait(n, secs)
    local deadline = socket.gettime() + (secs or 10)
    local list = r.requests()
    while #list < n and socket.gettime() < deadline do
      socket.sleep(0.02)
      list = r.requests()
    end
    return list
  end
  function r.stop()
    child.stop()
    os.remove(record)
  end
  return r
end

function M.http(method, url, headers, body)
  local socket = require "socket"
  local json = require "linqwebhooks.json"
  local host, port, target = url:match("^http://([^:/]+):(%d+)(.*)$")
  if target == "" then
    target = "/"
  end
  local c, err = socket.connect(host, tonumber(port))
  if not c then
    return nil, err
  end
  c:settimeout(10)
  local lines = { method .. " " .. target .. " HTTP/1.1", "Host: " .. host .. ":" .. port,
                  "Connection: close" }
  for k, v in pairs(headers or {}) do
    lines[#lines + 1] = k .. ": " .. v
  end
  if body then
    lines[#lines + 1] = "Content-Length: " .. #body
  end
  c:send(table.concat(lines, "\r\n") .. "\r\n\r\n" .. (body or ""))
  local status_line
  status_line, err = c:receive("*l")
  if not status_line then
    c:close()
    return nil, err
  end
  local res = { status = tonumber(status_line:match("^HTTP/1%.%d (%d+)")), headers = {} }
  while true do
    local h = c:receive("*l")
    if not h or h == "" then
      break
    end
    local k, v = h:match("^([^:]+):%s*(.-)%s*$")
    if k then
      res.headers[k:lower()] = v
    end
  end
  local len = tonumber(res.headers["content-length"] or "")
  if len then
    res.body = len > 0 and (c:receive(len) or "") or ""
  else
    local data, _, partial = c:receive("*a")
    res.body = data or partial or ""
  end
  c:close()
  if res.body ~= "" then
    res.json = json.decode(res.body)
  end
  return res
end

return M
