--- linqwh listen --secret S [--port P] [--host H] [--path /webhooks] [--json] [--events a,b]
-- A verifying receiver (linqwebhooks.receiver + linq.webhooks) printing one
-- line per delivery:
--   [2026-12-01 16:58:03] 200 message.received 0f6c...   (text)
--   {"time":"...","status":200,"event_type":"...","event_id":"...",...}   (--json)
-- Failed verifications print "- -" and the reason instead of type and id
-- (an unsigned body is never trusted). Runs until SIGTERM/SIGINT.
local util = require "linqwebhooks.cli.util"

local M = {}

function M.define(parser)
  local c = parser:command("listen", "Receive and verify deliveries; print one line per delivery.")
  util.secret_option(c)
  c:option("--host", "Address to listen on."):default("127.0.0.1")
  c:option("--port", "Port (0 = any free port, shown at start)."):default("8788")
  c:option("--path", "Webhook path."):default("/webhooks")
  c:option("--tolerance", "Seconds a timestamp may differ from now."):default("300"):argname("<seconds>")
  c:option("--events", "Only print these event types (comma-separated; 'message.*' patterns);"
    .. " others are verified and answered 200 silently."):count("*"):argname("<a,b>")
  c:flag("--json", "One JSON object per line (with the decoded payload).")
end

local function stamp(t)
  return os.date("%Y-%m-%d %H:%M:%S", math.floor(t))
end

local function iso(t)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t))
end

local function matcher(patterns)
  if #patterns == 0 then
    return function() return true end
  end
  return function(etype)
    for _, p in ipairs(patterns) do
      if p == "*" or p == etype or (p:sub(-2) == ".*" and etype:sub(1, #p - 1) == p:sub(1, -2)) then
        return true
      end
    end
    return false
  end
end

function M.run(a)
  local cmd = "listen"
  local secrets = util.secrets(a.secret, cmd)
  local port = util.number(a.port, "--port", cmd, 0, 65535, true)
  local tol = util.number(a.tolerance, "--tolerance", cmd, 0, 10 * 365 * 86400, true)
  if a.path:sub(1, 1) ~= "/" or a.path:find("[%s?#]") then
    util.usage("option '--path' must start with '/' and contain no spaces, '?' or '#'", cmd)
  end
  local wanted = matcher(util.check_event_types(util.split_list(a.events), cmd, true))
  local linq = require "linqwebhooks"
  local json = require "linqwebhooks.json"
  local hooks = linq.webhooks{ secrets = secrets, tolerance = tol > 0 and tol or false }

  local function print_res(now, status, res, note)
    local ev = res and res.event
    local reason = res and res.err and (res.err.reason or res.err.kind) or nil
    if ev and not wanted(ev.type) then
      return
    end
    if a.json then
      local o = { time = iso(now), status = status, duplicate = res and res.duplicate or false }
      if ev then
        o.event_type, o.event_id = ev.type, ev.id
        o.webhook_id = ev.delivery and ev.delivery.id or json.null
        o.scheme = ev.delivery and ev.delivery.scheme or json.null
        o.payload = json.decode(ev.raw) or json.null
      end
      o.reason = reason or (not res and note) or nil
      util.print_json(o)
    else
      local extra = res and res.duplicate and " (duplicate)" or ""
      if reason then
        extra = extra .. " (" .. tostring(reason) .. ")"
      elseif not res and note then
        extra = " (" .. note .. ")"
      end
      util.out(util.redact(string.format("[%s] %d %s %s%s", stamp(now), status,
        ev and ev.type or "-", ev and ev.id or "-", extra)))
    end
  end

  -- Deliveries are printed as hooks:handle answers them (its status is the
  -- answer); the receiver's log shows the requests refused before the
  -- dispatcher (404 wrong path, 405, 411, 413, malformed: no "(reason)"), and
  -- its ERROR lines (e.g. clock skew) go to stderr.
  local proxy = {
    handle = function(_, body, headers)
      local res = hooks:handle(body, headers)
      print_res(os.time(), res.status, res)
      return res
    end,
  }
  local receiver = require "linqwebhooks.receiver"
  local r, err = receiver.new{
    hooks = proxy, host = a.host, port = port, path = a.path,
    log = function(line)
      local what, status = line:match("(%S+ %S+) %-> (%d+)")
      if not status then
        util.warn("linqwh: ", line)
      elseif not line:find("%)$") and tonumber(status) ~= 200 then
        print_res(os.time(), tonumber(status), nil, what)
      end
    end,
  }
  if not r then
    util.fail(err)
  end
  local signal = util.watch_signals()
  util.warn("linqwh: listening on ", r.url, " (Ctrl-C to stop)")
  while not signal() do
    local ok, serr = pcall(r.step, r, 0.25)
    if not ok then
      util.warn("linqwh: ", serr)
    end
  end
  r:close()
  util.warn("linqwh: stopped (", signal(), ")")
end

return M
