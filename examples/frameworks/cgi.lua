--- Linq deliveries through CGI (any web server that runs a program per
-- request: the body on stdin, CONTENT_LENGTH bytes; the request headers in
-- HTTP_* environment variables; the response printed to stdout).
--
--   #!/usr/bin/env lua5.4   (or: ScriptAlias / fcgiwrap / busybox httpd -> this file)
--   LINQ_WEBHOOK_SECRET must be in the CGI environment (e.g. Apache: SetEnv).
--
-- One process per request: there is no memory between deliveries, so the
-- in-memory de-duplication is off here; use a persistent store if handlers
-- must not see a retried event twice.

-- Runs from a checkout after `make` with no LUA_PATH.
do
  local dir = (arg and arg[0] or ""):match("^(.*)[/\\]") or "."
  local root = dir .. "/../../"
  local build = rawget(_G, "jit") and "jit" or _VERSION:match("%d+%.%d+")
  package.path = root .. "lua/?.lua;" .. root .. "lua/?/init.lua;" .. package.path
  package.cpath = root .. "build/" .. build .. "/?.so;" .. package.cpath
end

local linq = require "linqwebhooks"

local MAX_BODY = 1024 * 1024

local function respond(status, reason, body)
  io.stdout:write("Status: ", status, " ", reason, "\r\n",
    "Content-Type: text/plain; charset=utf-8\r\n\r\n", body)
  io.stdout:flush()
  os.exit(0)
end

if os.getenv("REQUEST_METHOD") ~= "POST" then
  respond(405, "Method Not Allowed", "method not allowed")
end
local length = tonumber(os.getenv("CONTENT_LENGTH") or "")
if not length or length < 0 or length % 1 ~= 0 then
  respond(411, "Length Required", "length required")
elseif length > MAX_BODY then
  respond(413, "Payload Too Large", "too large")
end
local body = length > 0 and io.stdin:read(length) or ""
if #body ~= length then
  respond(400, "Bad Request", "short body")
end

-- CGI turns "webhook-signature" into HTTP_WEBHOOK_SIGNATURE, and so on.
local headers = {}
for _, name in ipairs({ "webhook-id", "webhook-timestamp", "webhook-signature",
                        "x-webhook-timestamp", "x-webhook-signature" }) do
  headers[name] = os.getenv("HTTP_" .. name:upper():gsub("%-", "_"))
end

local secret = os.getenv("LINQ_WEBHOOK_SECRET")
if not secret or secret == "" then
  respond(500, "Internal Server Error", "LINQ_WEBHOOK_SECRET is not set")
end
local hooks = linq.webhooks{ secret = secret, dedupe = false }
hooks:on("message.received", function(ev)
  -- stdout is the response: log to stderr (the server's error log)
  io.stderr:write(("message.received %s from %s\n"):format(ev.id, tostring(ev:sender())))
end)

local REASONS = { [200] = "OK", [400] = "Bad Request", [401] = "Unauthorized",
                  [500] = "Internal Server Error", [503] = "Service Unavailable" }
local res = hooks:handle(body, headers)
respond(res.status, REASONS[res.status] or "Status", res.body)
