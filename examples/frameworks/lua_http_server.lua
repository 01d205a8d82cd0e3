--- Linq deliveries in a lua-http server (Debian: apt-get install lua-http;
-- it is packaged for Lua 5.1/LuaJIT, so run it with luajit after `make luajit`).
--
--   LINQ_WEBHOOK_SECRET=whsec_... luajit examples/frameworks/lua_http_server.lua [port]
--
-- lua-http hands over a `headers` object: pass it to hooks:handle as it is
-- (anything with :get(name) is accepted; a repeated signature header is
-- still rejected). Port 0 (the default) picks a free port.

-- Runs from a checkout after `make luajit` with no LUA_PATH.
do
  local dir = (arg and arg[0] or ""):match("^(.*)[/\\]") or "."
  local root = dir .. "/../../"
  local build = rawget(_G, "jit") and "jit" or _VERSION:match("%d+%.%d+")
  package.path = root .. "lua/?.lua;" .. root .. "lua/?/init.lua;" .. package.path
  package.cpath = root .. "build/" .. build .. "/?.so;" .. package.cpath
end

local linq = require "linqwebhooks"
local http_server = require "http.server"
local http_headers = require "http.headers"

local MAX_BODY = 1024 * 1024 -- Linq deliveries are a few KB

local secret = os.getenv("LINQ_WEBHOOK_SECRET")
if not secret or secret == "" then
  io.stderr:write("set LINQ_WEBHOOK_SECRET to the subscription's signing_secret\n")
  os.exit(2)
end

local hooks = linq.webhooks{ secret = secret }
hooks:on("message.received", function(ev)
  print(("message.received %s from %s: %q"):format(ev.id, tostring(ev:sender()),
    tostring(ev:text())))
  io.stdout:flush()
end)

local function answer(stream, status, body)
  local h = http_headers.new()
  h:append(":status", tostring(status))
  h:append("content-type", "text/plain; charset=utf-8")
  assert(stream:write_headers(h, false))
  assert(stream:write_chunk(body, true))
end

local function onstream(_, stream)
  local req = assert(stream:get_headers())
  if req:get(":method") ~= "POST" or req:get(":path") ~= "/webhooks" then
    return answer(stream, 404, "not found")
  end
  if (tonumber(req:get("content-length")) or 0) > MAX_BODY then
    return answer(stream, 413, "too large")
  end
  local body = stream:get_body_chars(MAX_BODY + 1, 10) or ""
  if #body > MAX_BODY then
    return answer(stream, 413, "too large")
  end
  local res = hooks:handle(body, req) -- the headers object as lua-http gives it
  print(("%s %d %s"):format(os.date("!%H:%M:%S"), res.status,
    res.event and res.event.type or tostring(res.err and res.err.reason)))
  io.stdout:flush()
  answer(stream, res.status, res.body)
end

local server = assert(http_server.listen{
  host = "127.0.0.1",
  port = tonumber(arg[1]) or 0,
  onstream = onstream,
  onerror = function(_, _, op, err)
    io.stderr:write("lua-http: ", tostring(op), ": ", tostring(err), "\n")
  end,
})
assert(server:listen())
local _, host, port = server:localname()
print(("listening on http://%s:%d/webhooks"):format(host, port))
io.stdout:flush()
assert(server:loop())
