--- Linq Partner API v3 client: webhook subscriptions and webhook event types.
--
--   local client = linq.client{ api_key = ..., base_url = ..., timeout = 60,
--                               connect_timeout = 10, max_retries = 2, ca_file = nil,
--                               headers = {}, user_agent = nil, proxy = nil }
--   -- api_key: at most 8192 bytes, no whitespace or control characters
--   -- proxy: nil = the transport's default (libcurl: https_proxy / ALL_PROXY /
--   --   NO_PROXY from the environment), false = none, or a proxy URL; a
--   --   loopback base_url never uses a proxy
--   client.webhook_subscriptions:create{...} / :list() / :retrieve(id) / :update(id, p) / :delete(id)
--   client.webhook_events:list()
--   client:close()
--
-- Runtime failures return nil, err (see linqwebhooks.errors); programmer
-- errors (bad types, unknown keys, use after close) raise at level 2.
local e164 = require "linqwebhooks.e164"
local json = require "linqwebhooks.json"
local errors = require "linqwebhooks.errors"
local options = require "linqwebhooks.options"
local retry = require "linqwebhooks.retry"
local subscription = require "linqwebhooks.subscription"
local transport_select = require("linqwebhooks.transport").select
local urlmod = require "linqwebhooks.url"
local adopt = subscription.adopt

local M = {}

local VERSION = "0.2.0"
do
  local ok, core = pcall(require, "linqwebhooks.core")
  if ok and type(core) == "table" and core._VERSION then
    VERSION = core._VERSION
  end
end

local DEFAULT_BASE_URL = "https://api.linqapp.com/api/partner"
-- the C decoder itself (json.decode is this plus an argument type check;
-- response bodies are always strings)
local json_decode = require("linqwebhooks.core").json_decode or json.decode
local NULL = json.null
subscription.init(NULL)

-- Per-client request headers (they carry the API key) live outside the
-- client table so that dumping the object never shows them.
local secret_of = setmetatable({}, { __mode = "k" })

------------------------------------------------------------------------------
-- errors

local STATUS_NAMES = {
  [400] = "BadRequestError", [401] = "AuthenticationError", [403] = "PermissionDeniedError",
  [404] = "NotFoundError", [409] = "ConflictError", [422] = "UnprocessableEntityError",
  [429] = "RateLimitError",
}

--- The SDK error class name for an HTTP status.
function M.status_name(status)
  if STATUS_NAMES[status] then
    return STATUS_NAMES[status]
  end
  if status >= 500 then
    return "InternalServerError"
  end
  return "APIError"
end

local function short(s, n)
  s = tostring(s or ""):gsub("//[^/?#@]*@", "//***@") -- never echo URL credentials
  if #s > n then
    return s:sub(1, n) .. "..."
  end
  return s
end

local function api_error(res, method, path)
  local doc = #res.body > 0 and json.decode(res.body) or nil
  local e = type(doc) == "table" and doc.error or nil
  if type(e) ~= "table" then
    e = {}
  end
  local function field(t, k, want)
    local v = t[k]
    if type(v) == want then
      return v
    end
    return nil
  end
  local message = field(e, "message", "string")
    or (type(doc) == "table" and field(doc, "message", "string"))
    or (#res.body > 0 and short(res.body, 200))
    or ("HTTP " .. res.status)
  local retry_after = field(e, "retry_after", "number")
  if not retry_after then
    retry_after = retry.server_wait(res.headers)
  end
  return errors.new{
    kind = "api",
    name = M.status_name(res.status),
    status = res.status,
    code = field(e, "code", "number"),
    message = message,
    trace_id = (type(doc) == "table" and field(doc, "trace_id", "string")) or res.headers["x-trace-id"],
    doc_url = field(e, "doc_url", "string"),
    retry_after = retry_after,
    headers = res.headers,
    body = res.body,
    method = method,
    path = path,
  }
end

local function failure_error(kind, msg, method, path)
  if kind == "timeout" then
    return errors.new{ kind = "timeout", name = "APITimeoutError", method = method, path = path,
                       message = "request timed out: " .. tostring(msg) }
  end
  return errors.new{ kind = "connection", name = "APIConnectionError", method = method,
                     path = path, message = tostring(msg) }
end

local function invalid(message)
  return nil, errors.new{ kind = "invalid_request", name = "InvalidRequestError", message = message }
end

------------------------------------------------------------------------------
-- validation helpers

local function check_target_url(target, allow_http)
  if target:find("[%s%c]") then
    return "target_url must not contain spaces or control characters"
  end
  local u = urlmod.parse(target)
  if not u then
    return "target_url must be an absolute URL with a host, got '" .. short(target, 100) .. "'"
  end
  local scheme = u.scheme
  if scheme == "https" or (scheme == "http" and allow_http) then
    return nil
  end
  if scheme == "http" then
    return "target_url must be https (pass allow_http_targets = true to linq.client for a local emulator)"
  end
  return "target_url must be an https URL"
end

local is_array = options.is_list

local function check_events(v)
  if not is_array(v) or #v == 0 then
    return "subscribed_events must be a non-empty array of event type names"
  end
  for i, e in ipairs(v) do
    if type(e) ~= "string" or not e:match("^[a-z0-9_]+%.[a-z0-9_.]*[a-z0-9_]$") or e:find("..", 1, true) then
      return "subscribed_events[" .. i .. "] is not a dotted event type name: '" .. short(e, 60) .. "'"
    end
  end
end

local function check_phones(v)
  if v == NULL then
    return nil
  end
  if not is_array(v) then
    return "phone_numbers must be an array of E.164 strings (or linq.null)"
  end
  for i, p in ipairs(v) do
    if not e164.valid(p) then
      return "phone_numbers[" .. i .. "] is not an E.164 number (" .. e164.RULE .. "): '"
        .. short(tostring(p), 40) .. "'"
    end
  end
end

local function array_copy(t)
  local c = {}
  for i = 1, #t do
    c[i] = t[i]
  end
  return json.array(c)
end

local escape_id = urlmod.escape_segment

-- The URL of subscription `id` on `resource` (a client.webhook_subscriptions),
-- or nil for an empty id; raises (at `level`) unless id is a string.
local function id_url(resource, what, id, level)
  if type(id) ~= "string" then
    error(what .. ": argument 'id' must be a string, got " .. type(id), level + 1)
  end
  if id == "" then
    return nil
  end
  return resource.client._subs_prefix .. escape_id(id)
end

local PARAM_TYPES = {
  target_url = { "string" },
  subscribed_events = { "table" },
  phone_numbers = { "table", "userdata" },
  is_active = { "boolean" },
}

-- Raises on unknown keys and wrong types; returns an error message for bad values.
local function check_params(what, params, allowed, allow_http, level)
  if type(params) ~= "table" then
    error(what .. ": argument 'params' must be a table, got " .. type(params), level + 1)
  end
  for k, v in pairs(params) do
    if not allowed[k] then
      error(what .. ": unknown parameter '" .. tostring(k) .. "'", level + 1)
    end
    local ok = false
    for _, t in ipairs(PARAM_TYPES[k]) do
      if type(v) == t then
        ok = true
      end
    end
    if not ok or (type(v) == "userdata" and v ~= NULL) then
      error(what .. ": parameter '" .. k .. "' must be " .. table.concat(PARAM_TYPES[k], " or ")
        .. (k == "phone_numbers" and " (or linq.null)" or "") .. ", got " .. type(v), level + 1)
    end
  end
  if params.target_url ~= nil then
    local msg = check_target_url(params.target_url, allow_http)
    if msg then
      return msg
    end
  end
  if params.subscribed_events ~= nil then
    local msg = check_events(params.subscribed_events)
    if msg then
      return msg
    end
  end
  if params.phone_numbers ~= nil then
    local msg = check_phones(params.phone_numbers)
    if msg then
      return msg
    end
  end
end

local function body_of(params)
  local b = {}
  if params.target_url ~= nil then
    b.target_url = params.target_url
  end
  if params.subscribed_events ~= nil then
    b.subscribed_events = array_copy(params.subscribed_events)
  end
  if params.phone_numbers ~= nil then
    b.phone_numbers = params.phone_numbers == NULL and NULL or array_copy(params.phone_numbers)
  end
  if params.is_active ~= nil then
    b.is_active = params.is_active
  end
  return b
end

------------------------------------------------------------------------------
-- client

local Client = {}
Client.__index = Client
M.Client = Client

Client.__tostring = function(c)
  return "linqwebhooks.client " .. tostring(c.base_url) .. (c.closed and " (closed)" or "")
end

local Subscriptions = {}
Subscriptions.__index = Subscriptions
local Events = {}
Events.__index = Events

local function positive(max)
  return function(v)
    if v > 0 and v <= max then
      return true
    end
    return false, "must be > 0 and <= " .. max
  end
end

local PROXY_SCHEMES = { http = true, https = true, socks4 = true, socks4a = true, socks5 = true,
                        socks5h = true }

--- Longest accepted API key, in bytes.
M.MAX_API_KEY_BYTES = 8192
--- Longest accepted value of an extra header (option `headers`, `user_agent`).
M.MAX_HEADER_VALUE_BYTES = 8192

local SCHEMA = {
  api_key = "string",
  base_url = "string",
  timeout = { types = { "number" }, check = positive(3600) },
  connect_timeout = { types = { "number" }, check = positive(3600) },
  max_retries = { types = { "number" }, check = function(v)
    if v >= 0 and v <= 10 and v == math.floor(v) then
      return true
    end
    return false, "must be an integer from 0 to 10"
  end },
  ca_file = "string",
  headers = "table",
  user_agent = "string",
  allow_http_targets = "boolean",
  transport = { types = { "table", "string" } },
  proxy = { types = { "string", "boolean" }, check = function(v)
    if v == true then
      return false, "must be a proxy URL or false (true is not a proxy)"
    end
    if v == false then
      return true
    end
    local scheme = v:match("^(%a[%w+.-]*)://[^%s%c]+$")
    if not scheme or not PROXY_SCHEMES[scheme:lower()] then
      return false, "must be a proxy URL (http://, https://, socks4://, socks4a://, socks5://"
        .. " or socks5h://) or false"
    end
    return true
  end },
  max_body = { types = { "number" }, check = positive(1024 * 1024 * 1024) },
  on_retry = "function",
  log = { types = { "function", "boolean" }, check = function(v)
    return v ~= true, "must be a function(level, message), or false"
  end },
}

--- The default `log`: nginx's error log inside OpenResty, else one stderr line.
local function default_log(level, message)
  local ngx = rawget(_G, "ngx")
  if type(ngx) == "table" and type(ngx.log) == "function" and ngx.WARN then
    ngx.log(level == "error" and ngx.ERR or ngx.WARN, "linqwebhooks: ", message)
  else
    io.stderr:write(os.date("!%Y-%m-%dT%H:%M:%SZ "), "linqwebhooks: ", level, ": ", message, "\n")
  end
end

local getenv = options.getenv

local function lua_version()
  local jit = rawget(_G, "jit")
  if type(jit) == "table" and jit.version then
    return jit.version:gsub(" ", "/")
  end
  return (_VERSION:gsub(" ", "/"))
end

function M.new(opts, level)
  level = (level or 1) + 1
  opts = options.check("linq.client", opts, SCHEMA, level)
  local api_key = opts.api_key or getenv("LINQ_API_V3_API_KEY")
  if not api_key or api_key == "" then
    error("linq.client: no API key: pass api_key or set LINQ_API_V3_API_KEY", level)
  end
  -- (the key itself is never part of a message)
  local key_name = opts.api_key and "option 'api_key'" or "api_key (from LINQ_API_V3_API_KEY)"
  if #api_key > M.MAX_API_KEY_BYTES then
    error("linq.client: " .. key_name .. " is " .. #api_key .. " bytes long; at most "
      .. M.MAX_API_KEY_BYTES .. " are accepted", level)
  end
  if api_key:find("[%c%s]") then
    error("linq.client: " .. key_name .. " contains whitespace or control characters", level)
  end
  local base_url = opts.base_url or getenv("LINQ_API_V3_BASE_URL") or DEFAULT_BASE_URL
  base_url = base_url:gsub("/+$", "")
  local u = urlmod.parse(base_url)
  if not u or (u.scheme ~= "https" and u.scheme ~= "http") then
    error("linq.client: base_url must be an http(s) URL with a host, got '" .. short(base_url, 100) .. "'", level)
  end
  local loopback = urlmod.is_loopback(u.host)
  if u.scheme == "http" and not loopback then
    error("linq.client: refusing base_url '" .. short(base_url, 100) .. "': http:// is only allowed "
      .. "for loopback hosts (the API key would travel in clear text); use https://", level)
  end
  -- Proxy choice (docs: client, "Proxies"): a loopback base URL never goes
  -- through a proxy (a proxy cannot reach this machine's loopback, and over
  -- http:// it would read the key); otherwise `proxy` = URL | false, or
  -- nil for the transport's default (libcurl: https_proxy / ALL_PROXY /
  -- NO_PROXY from the environment; cosockets: never a proxy).
  local proxy = opts.proxy
  if loopback then
    proxy = false
  end

  local headers = {}
  -- opts.transport, else resty in nginx cosocket phases, else curl; raises
  -- in nginx phases without cosockets (see linqwebhooks.transport)
  local tmod = transport_select(opts, level)
  local ngx_sleep
  if tmod.name == "resty" then
    ngx_sleep = rawget(_G, "ngx").sleep
  end
  local ua = "linqwebhooks/" .. VERSION .. " " .. (tmod.user_agent or tostring(tmod.name or "custom"))
    .. " " .. lua_version()
  if opts.user_agent then
    if #opts.user_agent > 1024 then
      error("linq.client: option 'user_agent' is longer than 1024 bytes", level)
    end
    if opts.user_agent:find("[%c\127]") then
      error("linq.client: option 'user_agent' must not contain control characters (CR, LF, ...)",
        level)
    end
    ua = opts.user_agent .. " " .. ua
  end
  headers["User-Agent"] = ua
  headers["Accept"] = "application/json"
  if opts.headers then
    for k, v in pairs(opts.headers) do
      if type(k) ~= "string" or type(v) ~= "string" then
        error("linq.client: option 'headers' must map header names to string values", level)
      end
      -- RFC 9110 token names; values without control characters (no CR/LF
      -- header injection, no NUL)
      if not k:find("^[%w!#$%%&'*+%-.^_`|~]+$") then
        error("linq.client: option 'headers' has an invalid header name '" .. short(k, 40) .. "'",
          level)
      end
      if #v > M.MAX_HEADER_VALUE_BYTES then
        error("linq.client: option 'headers' value of '" .. k .. "' is longer than "
          .. M.MAX_HEADER_VALUE_BYTES .. " bytes", level)
      end
      if v:find("[%z\1-\8\10-\31\127]") then
        error("linq.client: option 'headers' value of '" .. k .. "' contains control characters",
          level)
      end
      local lk = k:lower()
      if lk == "authorization" then
        error("linq.client: option 'headers' must not set Authorization (use api_key)", level)
      end
      for dk in pairs(headers) do
        if dk:lower() == lk then
          headers[dk] = nil
        end
      end
      headers[k] = v
    end
  end

  local transport = tmod.new({
    timeout = opts.timeout or 60,
    connect_timeout = opts.connect_timeout or 10,
    ca_file = opts.ca_file,
    max_body = opts.max_body or 8 * 1024 * 1024,
    proxy = proxy,
  }, level)

  -- Request header sets, built once (the transport never modifies them).
  local function header_set(extra)
    local h = {}
    for k, v in pairs(headers) do
      h[k] = v
    end
    h["Authorization"] = "Bearer " .. api_key
    for k, v in pairs(extra) do
      for dk in pairs(h) do
        if dk:lower() == k:lower() then
          h[dk] = nil
        end
      end
      h[k] = v
    end
    return h
  end

  local self = setmetatable({
    base_url = base_url,
    user_agent = ua,
    _subs_url = base_url .. "/v3/webhook-subscriptions",
    _subs_prefix = base_url .. "/v3/webhook-subscriptions/",
    max_retries = opts.max_retries or 2,
    timeout = opts.timeout or 60,
    allow_http_targets = opts.allow_http_targets or false,
    closed = false,
    _transport = transport,
    _sleep = tmod.sleep or ngx_sleep or require("linqwebhooks.http").sleep,
    _on_retry = opts.on_retry,
    _log = opts.log ~= false and (opts.log or default_log) or nil,
  }, Client)
  secret_of[self] = {
    get = header_set({}),
    body = header_set({ ["Content-Type"] = "application/json" }),
    delete = header_set({ Accept = "*/*" }),
  }
  self.webhook_subscriptions = setmetatable({ client = self }, Subscriptions)
  self.webhook_events = setmetatable({ client = self }, Events)
  return self
end

function Client:close()
  if not self.closed then
    self.closed = true
    local t = self._transport
    self._transport = nil
    if t then
      t:close()
    end
  end
end

local function seconds(w)
  return (("%.1f"):format(w):gsub("%.0$", ""))
end

--- Tells on_retry and log about a retry before its wait. info: attempt (the
-- attempt that failed, 1 = the first request), max_attempts, wait (seconds),
-- method, path, status (HTTP status) or nil, kind ("api", "timeout",
-- "connection"), name, message, error (the error object). on_retry may
-- return false to give up now (the call returns that error). Never the key.
local function announce_retry(self, err, attempt, wait)
  local info = {
    attempt = attempt + 1, -- 1-based number of the attempt that failed
    max_attempts = self.max_retries + 1,
    wait = wait,
    method = err.method,
    path = err.path,
    status = err.status,
    kind = err.kind,
    name = err.name,
    message = err.message,
    error = err,
  }
  if self._log then
    local why = err.status and tostring(err.status)
      or (err.kind == "timeout" and "a timeout")
      or ("a connection error (" .. short(err.message, 120) .. ")")
    self._log("warn", ("retrying %s %s in %s s after %s (attempt %d of %d)"):format(
      tostring(err.method), short(err.path, 200), seconds(wait), why, info.attempt + 1,
      info.max_attempts))
  end
  if self._on_retry then
    return self._on_retry(info)
  end
end

--- One API call with retries. Returns the decoded JSON body (or true for an
-- empty body) | nil, err. `url` is base_url .. path; `params` (a table or
-- nil) is the JSON request body; `idempotent` is false for create (see
-- linqwebhooks.retry).
function Client:_call(method, url, params, idempotent, level)
  if self.closed then
    error("linq.client: the client is closed", level + 1)
  end
  local body, headers
  if params ~= nil then
    local err
    body, err = json.encode(params)
    if not body then
      return invalid("cannot encode the request body: " .. tostring(err))
    end
    headers = secret_of[self].body
  elseif method == "DELETE" then
    headers = secret_of[self].delete
  else
    headers = secret_of[self].get
  end
  local attempt = 0
  while true do
    local res, kind, msg, detail = self._transport:request(method, url, headers, body)
    local err, again, wait
    if not res then
      err = failure_error(kind, msg, method, url:sub(#self.base_url + 1))
      again = retry.should_retry_failure(kind, detail, idempotent)
    else
      local status = res.status
      if status >= 200 and status < 300 then
        local rbody = res.body
        if status == 204 or rbody == "" then
          return true, res
        end
        local doc, jerr = json_decode(rbody)
        if doc == nil then
          return nil, errors.new{ kind = "api", name = "APIResponseValidationError", status = status,
                                  message = "response is not valid JSON: " .. tostring(jerr),
                                  headers = res.headers, body = rbody, method = method,
                                  path = url:sub(#self.base_url + 1) }
        end
        return doc, res
      end
      err = api_error(res, method, url:sub(#self.base_url + 1))
      again = retry.should_retry_status(status, res.headers, idempotent)
      wait = retry.server_wait(res.headers)
    end
    if not again or attempt >= self.max_retries then
      err.attempts = attempt + 1
      return nil, err
    end
    wait = wait or retry.backoff(attempt)
    if (self._on_retry or self._log) and announce_retry(self, err, attempt, wait) == false then
      err.attempts = attempt + 1
      return nil, err
    end
    self._sleep(wait)
    attempt = attempt + 1
    if self.closed then -- closed by another coroutine while sleeping
      return nil, err
    end
  end
end

local function doc_table(doc, what)
  if type(doc) ~= "table" then
    return nil, errors.new{ kind = "api", name = "APIResponseValidationError",
                            message = what .. ": expected a JSON object in the response" }
  end
  return doc
end

------------------------------------------------------------------------------
-- client.webhook_subscriptions

local CREATE_KEYS = { target_url = true, subscribed_events = true, phone_numbers = true }
local UPDATE_KEYS = { target_url = true, subscribed_events = true, phone_numbers = true, is_active = true }

local function resource_client(self, what, level)
  if getmetatable(self) ~= Subscriptions and getmetatable(self) ~= Events then
    error(what .. ": call it with ':'", level + 1)
  end
  return self.client
end

--- :create{ target_url, subscribed_events, phone_numbers } -> sub (with signing_secret) | nil, err
function Subscriptions:create(params)
  local what = "webhook_subscriptions:create"
  local client = resource_client(self, what, 2)
  local msg = check_params(what, params, CREATE_KEYS, client.allow_http_targets, 2)
  if not msg and params.target_url == nil then
    msg = "target_url is required"
  end
  if not msg and params.subscribed_events == nil then
    msg = "subscribed_events is required"
  end
  if msg then
    return invalid(msg)
  end
  local doc, err = client:_call("POST", client._subs_url, body_of(params), false, 2)
  if not doc then
    return nil, err
  end
  doc, err = doc_table(doc, what)
  if not doc then
    return nil, err
  end
  return subscription.adopt(self, doc, true)
end

--- :list() -> array of subscription objects | nil, err
function Subscriptions:list()
  local what = "webhook_subscriptions:list"
  local client = resource_client(self, what, 2)
  local doc, err = client:_call("GET", client._subs_url, nil, true, 2)
  if not doc then
    return nil, err
  end
  if type(doc) ~= "table" or type(doc.subscriptions) ~= "table" then
    return nil, errors.new{ kind = "api", name = "APIResponseValidationError",
                            message = what .. ": response has no 'subscriptions' array" }
  end
  local out = {}
  for i, s in ipairs(doc.subscriptions) do
    if type(s) == "table" then
      out[#out + 1] = subscription.adopt(self, s)
    else
      return nil, errors.new{ kind = "api", name = "APIResponseValidationError",
                              message = what .. ": subscriptions[" .. i .. "] is not an object" }
    end
  end
  return out
end

function Subscriptions:_retrieve(id, level)
  local what = "webhook_subscriptions:retrieve"
  local client = resource_client(self, what, level + 1)
  local url = id_url(self, what, id, level + 1)
  if not url then
    return invalid("id must be a non-empty string")
  end
  local doc, err = client:_call("GET", url, nil, true, level + 1)
  if not doc then
    return nil, err
  end
  return doc_table(doc, what)
end

--- :retrieve(id) -> sub | nil, err
function Subscriptions:retrieve(id)
  local doc, err = Subscriptions._retrieve(self, id, 2)
  if not doc then
    return nil, err
  end
  return adopt(self, doc)
end

function Subscriptions:_update(id, params, level)
  local what = "webhook_subscriptions:update"
  local client = resource_client(self, what, level + 1)
  local url = id_url(self, what, id, level + 1)
  local msg = check_params(what, params, UPDATE_KEYS, client.allow_http_targets, level + 1)
  if not url then
    msg = "id must be a non-empty string"
  end
  if msg then
    return invalid(msg)
  end
  local doc, err = client:_call("PUT", url, body_of(params), true, level + 1)
  if not doc then
    return nil, err
  end
  return doc_table(doc, what)
end

--- :update(id, params) -> sub | nil, err
function Subscriptions:update(id, params)
  local doc, err = self:_update(id, params, 2)
  if not doc then
    return nil, err
  end
  return subscription.adopt(self, doc)
end

--- :delete(id) -> true | nil, err
function Subscriptions:delete(id)
  local what = "webhook_subscriptions:delete"
  local client = resource_client(self, what, 2)
  local url = id_url(self, what, id, 2)
  if not url then
    return invalid("id must be a non-empty string")
  end
  local ok, err = client:_call("DELETE", url, nil, true, 2)
  if not ok then
    return nil, err
  end
  return true
end

--- :plan(desired) / :apply(desired, opts) / :rotate(sub_or_id, opts):
-- subscriptions as code and secret rotation (linqwebhooks.subscriptions.*)
function Subscriptions:plan(desired)
  resource_client(self, "webhook_subscriptions:plan", 2)
  local plan, err = require("linqwebhooks.subscriptions.desired").plan(self, desired, 2)
  return plan, err
end

function Subscriptions:apply(desired, opts)
  resource_client(self, "webhook_subscriptions:apply", 2)
  local done, err = require("linqwebhooks.subscriptions.desired").apply(self, desired, opts, 2)
  return done, err
end

function Subscriptions:rotate(sub_or_id, opts)
  resource_client(self, "webhook_subscriptions:rotate", 2)
  local sub, err = require("linqwebhooks.subscriptions.rotation").rotate(self, sub_or_id, opts, 2)
  return sub, err
end

------------------------------------------------------------------------------
-- client.webhook_events

--- :list() -> { events = {...}, doc_url = "..." } | nil, err
function Events:list()
  local what = "webhook_events:list"
  local client = resource_client(self, what, 2)
  local doc, err = client:_call("GET", client.base_url .. "/v3/webhook-events", nil, true, 2)
  if not doc then
    return nil, err
  end
  if type(doc) ~= "table" or type(doc.events) ~= "table" then
    return nil, errors.new{ kind = "api", name = "APIResponseValidationError",
                            message = what .. ": response has no 'events' array" }
  end
  return doc
end

-- exposed for tests and other modules
M.escape_id = escape_id
M.is_loopback_host = urlmod.is_loopback

return M
