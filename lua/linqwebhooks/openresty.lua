--- OpenResty / nginx integration: answer Linq deliveries from
-- `content_by_lua*`, without blocking the worker; work a dispatcher's inbox
-- inside nginx from `init_worker_by_lua*` (work, at the end of this file).
--
--   -- nginx.conf: lua_shared_dict linq_dedupe 10m;
--   --             location = /linq/webhooks { content_by_lua_block { require("handler").serve() } }
--   local linq = require "linqwebhooks"
--   local openresty = require "linqwebhooks.openresty"
--   local hooks = linq.webhooks{ secret = ..., dedupe = linq.store.shdict(ngx.shared.linq_dedupe) }
--   hooks:on("message.received", function(event) ... end)
--   openresty.serve(hooks)                      -- or serve(hooks, { quick_ack = true })
--
-- process(hooks, opts) -> res: the same without writing the response (for
--   frameworks that own it, e.g. Lapis: return { status = res.status, ... }).
-- serve(hooks, opts) -> res (the dispatcher's result table)
--   Reads the raw body (`ngx.req.read_body()`; the in-memory buffer, or the
--   temp file nginx spilled a large body to, verified by streaming it through
--   the incremental verifier before it is loaded), takes the five signature
--   headers from nginx's header list (through lua-nginx-module's FFI API,
--   without building the table of every header as `ngx.req.get_headers()`
--   does; that is the fallback without resty.core); a repeated signature
--   header arrives as an array and the verifier rejects it (401
--   invalid_headers); more than 200 request headers is answered 400, runs the dispatcher and sends its
--   status and short text body. Only POST is accepted (405 otherwise).
--   Handler failures (500) are logged at ngx.ERR (handlers' errors also go
--   to hooks:on_error); a full or unreachable dedupe store (503) at ngx.ERR
--   by the dispatcher, an inbox that could not store (503) at ngx.ERR; 401 at ngx.WARN, and at ngx.ERR with the measured
--   clock skew when the signature was checked but the timestamp lies outside
--   the tolerance (timestamp_too_old / timestamp_too_new: the usual cause is
--   this host's clock, and Linq does not retry a 401); other non-200 answers
--   (400, 503 for a copy still in flight elsewhere) at ngx.INFO.
-- opts.quick_ack = true
--   Answer 200 as soon as the delivery is verified and decoded, and run the
--   handlers in `ngx.timer.at(0, ...)` (a timer: handlers may use cosockets,
--   e.g. the client). A handler failure then can no longer make Linq retry:
--   it goes to hooks:on_error and the nginx error log (ngx.ERR). If the timer
--   cannot be created (lua_max_pending_timers reached) the delivery is
--   handled inline instead. Verification and de-duplication happen before
--   the answer (hooks:prepare), so forgeries still get 401 and a copy still
--   in flight 503.
local options = require "linqwebhooks.options"

local M = {}

local SCHEMA = {
  quick_ack = "boolean",
}

-- get_headers() limit: more headers than this is answered 400 (a truncated
-- header table could hide a repeated signature header).
local MAX_HEADERS = 200

local SIG_NAMES = {
  ["webhook-id"] = true, ["webhook-timestamp"] = true, ["webhook-signature"] = true,
  ["x-webhook-timestamp"] = true, ["x-webhook-signature"] = true,
}

--- The signature headers of the current request, straight from nginx's
-- header list through lua-nginx-module's FFI API (the two calls resty.core's
-- ngx.req.get_headers is built on): every header is looked at, but only the
-- five signature names become Lua strings, and a repeated one becomes an
-- array as in get_headers (the verifier rejects it). -> table | nil,
-- "truncated" (more than MAX_HEADERS headers). nil when that API is not
-- there (no LuaJIT FFI or no resty.core): get_headers() is used instead.
local function ffi_header_reader()
  local ok, reader = pcall(function()
    local ffi = require "ffi"
    local base = require "resty.core.base"
    require "resty.core.request" -- declares the FFI functions and types used here
    local C = ffi.C
    local count_fn = C.ngx_http_lua_ffi_req_get_headers_count
    local get_fn = C.ngx_http_lua_ffi_req_get_headers
    local get_request = base.get_request
    local buf = ffi.new("ngx_http_lua_ffi_table_elt_t[?]", MAX_HEADERS)
    local truncated = ffi.new("int[1]")
    local ffi_string = ffi.string
    return function()
      local r = get_request()
      if not r then
        return nil, "no request"
      end
      truncated[0] = 0
      local n = count_fn(r, MAX_HEADERS, truncated)
      if n < 0 then
        return nil, "no headers"
      end
      if truncated[0] ~= 0 then
        return nil, "truncated"
      end
      local headers = {}
      if n > 0 and get_fn(r, buf, n, 0) ~= 0 then -- 0: names in lowercase
        return nil, "no headers"
      end
      for i = 0, n - 1 do
        local key = buf[i].key
        local len = tonumber(key.len)
        -- only names of 10, 17 or 19 bytes can be signature headers
        if len == 10 or len == 17 or len == 19 then
          local name = ffi_string(key.data, len)
          if SIG_NAMES[name] then
            local value = ffi_string(buf[i].value.data, buf[i].value.len)
            local prev = headers[name]
            if prev == nil then
              headers[name] = value
            elseif type(prev) == "table" then
              prev[#prev + 1] = value
            else
              headers[name] = { prev, value }
            end
          end
        end
      end
      return headers
    end
  end)
  if ok then
    return reader
  end
  return nil
end

local read_sig_headers -- set on first use (the FFI API exists only inside nginx)
local probed = false

--- The request headers the verifier needs: the signature headers only
-- (through the FFI reader), or every header from get_headers().
local function request_headers(ngx)
  if not probed then
    probed = true
    read_sig_headers = ffi_header_reader()
  end
  if read_sig_headers then
    local h, err = read_sig_headers()
    if h or err == "truncated" then
      return h, err
    end
  end
  return ngx.req.get_headers(MAX_HEADERS)
end

local function ngx_api()
  local ngx = rawget(_G, "ngx")
  if type(ngx) ~= "table" or type(ngx.get_phase) ~= "function" then
    error("openresty.serve: must run inside OpenResty/nginx (content_by_lua*)", 3)
  end
  return ngx
end

local function respond(ngx, status, body, extra)
  ngx.status = status
  ngx.header["Content-Type"] = "text/plain; charset=utf-8"
  if extra then
    for k, v in pairs(extra) do
      ngx.header[k] = v
    end
  end
  ngx.print(body or "")
end

local function read_file(path)
  local f, err = io.open(path, "rb")
  if not f then
    return nil, err
  end
  local s = f:read("*a")
  f:close()
  return s
end

--- Reads the raw body: string, or nil + temp file path.
local function request_body(ngx)
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if body then
    return body
  end
  local file = ngx.req.get_body_file()
  if file then
    return nil, file
  end
  return ""
end

-- The delivery's timestamp header (first value if repeated), as a number.
local function header_timestamp(headers)
  for _, name in ipairs({ "webhook-timestamp", "x-webhook-timestamp" }) do
    local v = headers and headers[name]
    if type(v) == "table" then
      v = v[1]
    end
    local n = type(v) == "string" and v:match("^%s*(%d+)%s*$") and tonumber(v)
    if n then
      return n
    end
  end
  return nil
end

--- Measured clock skew in seconds, signed: positive when this server's
-- clock is ahead of the sender's (the delivery looks too old). err.skew
-- when the verifier reports it, else computed from the timestamp header.
local function skew_of(ngx, hooks, err, headers)
  local skew = tonumber(err.skew)
  if skew then
    return skew
  end
  local ts = header_timestamp(headers)
  if not ts then
    return nil
  end
  local v = hooks:verifier()
  local clock = type(v) == "table" and rawget(v, "_clock")
  local ok, now = pcall(clock or ngx.time)
  if not ok or type(now) ~= "number" then
    now = ngx.time()
  end
  return now - ts
end

local function log_result(ngx, hooks, res, headers, prefix)
  local err = res.err
  local reason = type(err) == "table" and err.reason
  if res.status == 401 and (reason == "timestamp_too_old" or reason == "timestamp_too_new") then
    -- a signature that may be genuine, rejected for its age: a clock off by
    -- more than the tolerance loses every event (Linq does not retry 401)
    local skew = skew_of(ngx, hooks, err, headers)
    ngx.log(ngx.ERR, prefix, "401 ", reason, ": clock skew ",
      skew and string.format("%+d", math.floor(skew + 0.5)) or "unknown",
      " s (positive: this server's clock is ahead of the sender's); check NTP on this host,"
      .. " Linq does not retry 401 answers")
  elseif res.status == 401 then
    ngx.log(ngx.WARN, prefix, res.status, " ", tostring(err or res.body))
  elseif reason == "store_full" or (type(err) == "table" and err.logged) then
    return -- the dispatcher logged it (its `log` option) at error level
  elseif res.status >= 500 and not res.duplicate then
    ngx.log(ngx.ERR, prefix, res.status, " ", tostring(err or res.body))
  elseif res.status ~= 200 then
    ngx.log(ngx.INFO, prefix, res.status, " ", tostring(err or res.body))
  end
end

local function verification_failed(err)
  return { status = 401, body = "verification failed: " .. tostring(err and err.reason),
           err = err, duplicate = false }
end

--- Verifies a spilled body from its file, then loads it.
-- -> body, info | nil, res (a 401/500 result)
local function verify_spilled(hooks, path, headers)
  local info, verr = hooks:verifier():verify_file(path, headers)
  if not info then
    if verr and verr.reason == "io_error" then
      return nil, { status = 500, body = "cannot read the request body", err = verr,
                    duplicate = false }
    end
    return nil, verification_failed(verr)
  end
  local body, ferr = read_file(path)
  if not body then
    return nil, { status = 500, body = "cannot read the request body", duplicate = false,
                  err = require("linqwebhooks.errors").new({ kind = "io", reason = "io_error",
                    message = tostring(ferr) }) }
  end
  return body, info
end

-- Timer callback for quick_ack: runs the deferred part, reports failures.
local function deferred(premature, run)
  local ngx = rawget(_G, "ngx")
  local _ = premature -- on shutdown the delivery was acknowledged already: still handle it
  local ok, res = pcall(run)
  if not ok then
    ngx.log(ngx.ERR, "linqwebhooks: quick_ack dispatch raised: ", tostring(res))
    return
  end
  if res and res.status ~= 200 and not (res.duplicate and res.status == 503) then
    ngx.log(ngx.ERR, "linqwebhooks: quick_ack dispatch of event ",
      tostring(res.event and res.event.id), " failed after the 200 answer: ", res.status, " ",
      tostring(res.err or res.body))
  end
end

--- Verify (unless `info` came from the spilled file), decode and claim with
-- hooks:prepare; dispatch now, or for quick_ack in a timer after answering.
local function dispatch(ngx, hooks, body, info, headers, quick_ack)
  if not quick_ack and type(hooks._handle) == "function" then
    return hooks:_handle(body, headers, info) -- no closure per request (see webhooks.lua)
  end
  local res, run = hooks:prepare(body, headers, info)
  if not run then
    return res
  end
  if quick_ack and ngx.timer.at(0, deferred, run) then
    return res
  end
  return run() -- not quick_ack, or no timer could be created: handle inline
end

-- The request half of serve: method, headers, body, verify, dispatch, log.
-- `what` names the public function in errors ("openresty.serve"/"process").
local function run_request(what, hooks, opts, level)
  level = level + 1
  local ngx = ngx_api()
  if type(hooks) ~= "table" or type(hooks.prepare) ~= "function" then
    error(what .. ": argument 'hooks' must be a dispatcher (linq.webhooks{...}), got "
      .. type(hooks), level)
  end
  options.check(what, opts, SCHEMA, level)
  local phase = ngx.get_phase()
  if phase ~= "content" and what == "openresty.serve" then
    error(what .. ": call it from content_by_lua* (current phase: " .. tostring(phase)
      .. ")", level)
  end
  local quick_ack = opts and opts.quick_ack

  local method = ngx.req.get_method()
  if method ~= "POST" then
    return { status = 405, body = "method not allowed", duplicate = false,
             headers = { Allow = "POST" } }
  end
  local headers, herr = request_headers(ngx)
  if herr == "truncated" then
    return { status = 400, body = "too many request headers", duplicate = false }
  end

  local body, file = request_body(ngx)
  local info, res
  if not body then
    body, info = verify_spilled(hooks, file, headers)
    if not body then
      res = info
    end
  end
  if not res then
    res = dispatch(ngx, hooks, body, info, headers, quick_ack)
  end
  log_result(ngx, hooks, res, headers, "linqwebhooks: delivery answered ")
  return res
end

--- openresty.process(hooks, opts) -> res
-- Everything serve does except writing the response: for frameworks that
-- own the response (Lapis, a handler adding its own headers or body). res is
-- the dispatcher's result { status, body, event, err, duplicate }, plus
-- res.headers = { Allow = "POST" } on the 405 for another method. The
-- outcome is logged as serve logs it. Callable from any phase that can read
-- the request body (content_by_lua*, access_by_lua*, a Lapis action).
function M.process(hooks, opts)
  return run_request("openresty.process", hooks, opts, 1)
end

--- openresty.serve(hooks, opts) -> res: process, then send res.status and
-- res.body (text/plain).
function M.serve(hooks, opts)
  local res = run_request("openresty.serve", hooks, opts, 1)
  respond(rawget(_G, "ngx"), res.status, res.body, res.headers)
  return res
end

--- openresty.work(hooks, opts) -> n: works the dispatcher's inbox inside
-- nginx. Call it from init_worker_by_lua*: it starts one ngx.timer.at(0)
-- in this worker (when chosen, see opts.workers) running the inbox worker's
-- loop (lua/linqwebhooks/inbox/worker.lua) with ngx.sleep and ngx.now; the
-- loop stops when the worker exits (reload, quit) or the timer is premature.
-- Options: those of hooks:work (heartbeat defaults to false and cannot be
-- true: a count hook cannot yield to a cosocket; long handlers call
-- hooks:heartbeat()), plus workers (how many nginx workers work the inbox,
-- those with ngx.worker.id() < workers; default all). The worker name
-- defaults to "<hostname>:<nginx worker pid>:nginx". -> the number of
-- loops started in this worker (0 or 1). Errors of a turn (handlers' errors
-- are handled by the retries) are logged at ngx.ERR and the loop goes on.
local WORK_SCHEMA
local function work_schema()
  if not WORK_SCHEMA then
    local worker = require "linqwebhooks.inbox.worker"
    WORK_SCHEMA = {}
    for k, v in pairs(worker.SCHEMA) do
      WORK_SCHEMA[k] = v
    end
    WORK_SCHEMA.workers = { types = { "number" },
      check = options.number{ min = 1, max = 1000000, integer = true } }
  end
  return WORK_SCHEMA
end

function M.work(hooks, opts)
  local ngx = rawget(_G, "ngx")
  if type(ngx) ~= "table" or type(ngx.get_phase) ~= "function" then
    error("openresty.work: must run inside OpenResty/nginx (init_worker_by_lua*)", 2)
  end
  if type(hooks) ~= "table" or type(hooks.inbox) ~= "function" then
    error("openresty.work: argument 'hooks' must be a dispatcher (linq.webhooks{...}), got "
      .. type(hooks), 2)
  end
  local inbox = hooks:inbox()
  if not inbox then
    error("openresty.work: this dispatcher has no inbox (linq.webhooks{ inbox = ... })", 2)
  end
  opts = options.check("openresty.work", opts, work_schema(), 2) or {}
  if opts.heartbeat then
    error("openresty.work: option 'heartbeat' cannot be true inside nginx (a count hook cannot"
      .. " use cosockets): call hooks:heartbeat() from long handlers", 2)
  end
  local phase = ngx.get_phase()
  if phase ~= "init_worker" then
    error("openresty.work: call it from init_worker_by_lua* (current phase: " .. tostring(phase)
      .. ")", 2)
  end
  if opts.workers and ngx.worker.id() and ngx.worker.id() >= opts.workers then
    return 0
  end
  local worker = require "linqwebhooks.inbox.worker"
  local wopts = {}
  for k, v in pairs(opts) do
    if k ~= "workers" then
      wopts[k] = v
    end
  end
  local cfg = worker.config("openresty.work", wopts, 2, {
    name = function()
      return worker.hostname() .. ":" .. tostring(ngx.worker.pid()) .. ":nginx"
    end,
    clock = function()
      ngx.update_time()
      return ngx.now()
    end,
    sleep = ngx.sleep,
    heartbeat = false,
  })
  -- logged at ngx.ERR: a new message at once, the same one at most once a minute
  -- (an unreachable Redis fails every poll)
  local last_msg, last_at = nil, -math.huge
  cfg.on_error = function(err)
    local msg = tostring(err)
    local now = ngx.now()
    if msg ~= last_msg or now - last_at >= 60 then
      last_msg, last_at = msg, now
      ngx.log(ngx.ERR, "linqwebhooks: openresty.work: ", msg)
    end
  end
  local function run(premature)
    if premature then
      return
    end
    local stop = function()
      if ngx.worker.exiting() then
        return "exiting"
      end
      return nil
    end
    local ok, res = pcall(worker.loop, hooks, inbox, cfg, stop)
    if not ok then
      ngx.log(ngx.ERR, "linqwebhooks: openresty.work stopped: ", tostring(res))
    else
      ngx.log(ngx.INFO, "linqwebhooks: openresty.work stopped (", tostring(res.stopped), ")")
    end
  end
  local ok, err = ngx.timer.at(0, run)
  if not ok then
    error("openresty.work: cannot start the timer: " .. tostring(err), 2)
  end
  return 1
end

return M
