--- The Linq Partner API v3 webhook endpoints (under /api/partner) and the
-- emulator's admin endpoints (under /_emulator), as one request handler.
--
--   GET    /api/partner/v3/webhook-events
--   POST   /api/partner/v3/webhook-subscriptions
--   GET    /api/partner/v3/webhook-subscriptions
--   GET    /api/partner/v3/webhook-subscriptions/{id}
--   PUT    /api/partner/v3/webhook-subscriptions/{id}
--   DELETE /api/partner/v3/webhook-subscriptions/{id}
--   POST   /_emulator/events          (loopback peers only, no auth)
--   GET    /_emulator/deliveries      (loopback peers only, no auth; optional
--                                      ?event_id=...&subscription_id=... filters)
--   DELETE /_emulator/deliveries      (clears the log)
local json = require "linqwebhooks.json"
local event_types = require "linqwebhooks.event_types"
local catalogue = require "linqwebhooks.events"
local util = require "linqwebhooks.emulator.util"

local M = {}

M.DOC_URL = "https://docs.linqapp.com/guides/webhooks/events"

-- Every type of the catalogue (linqwebhooks.events) can be subscribed to,
-- listed and triggered.
local KNOWN_TYPE = {}
for _, t in ipairs(event_types) do
  KNOWN_TYPE[t] = true
end
M.KNOWN_TYPE = KNOWN_TYPE

-- Payload versions a target URL may ask for with ?version=.
local VERSION = {}
for _, v in ipairs(catalogue.PAYLOAD_VERSIONS) do
  VERSION[v] = true
end

local function doc_url(code)
  return "https://docs.linqapp.com/error/codes/" .. math.floor(code / 1000) .. "xxx/" .. code .. "/"
end

local function headers(trace)
  return { ["Content-Type"] = "application/json", ["X-Trace-Id"] = trace }
end

--- Linq's error envelope.
function M.error_body(status, code, message, trace)
  trace = trace or util.trace_id()
  local body = json.encode({
    success = false,
    error = { status = status, code = code, message = message, doc_url = doc_url(code) },
    trace_id = trace,
  })
  return headers(trace), body
end

--- Errors raised by the HTTP layer (malformed requests, 413, timeouts).
function M.transport_error(status, message)
  local code = 1003
  if status >= 500 then
    code = 3006
  elseif status == 408 then
    code = 3005
  end
  return M.error_body(status, code, message)
end

local function fail(trace, status, code, message)
  local h, b = M.error_body(status, code, message, trace)
  return status, h, b
end

local function ok(trace, status, value)
  if status == 204 then
    return 204, { ["X-Trace-Id"] = trace }, ""
  end
  local body = assert(json.encode(value))
  return status, headers(trace), body
end

local function count_keys(t)
  local n = 0
  for _ in pairs(t) do
    n = n + 1
  end
  return n
end

local function is_array(v)
  if type(v) ~= "table" then
    return false
  end
  if json.is_array(v) then
    return true
  end
  return next(v) ~= nil and count_keys(v) == #v
end

local function is_object(v)
  return type(v) == "table" and not json.is_array(v) and (next(v) == nil or count_keys(v) ~= #v)
end

local function is_null(v)
  return v == nil or v == json.null
end

local e164 = require("linqwebhooks.e164").valid
M.e164 = e164

--- Subscription as the API shows it (never the secret, unless `with_secret`).
local function view(sub, with_secret)
  local t = {
    id = sub.id,
    target_url = sub.target_url,
    subscribed_events = json.array({ (table.unpack or unpack)(sub.subscribed_events) }),
    is_active = sub.is_active,
    created_at = sub.created_at,
    updated_at = sub.updated_at,
    phone_numbers = sub.phone_numbers
      and json.array({ (table.unpack or unpack)(sub.phone_numbers) }) or json.null,
  }
  if with_secret then
    t.signing_secret = sub.secret
  end
  return t
end

-- Validators: return the normalised value, or nil, status, code, message.

local function check_url(v)
  if type(v) ~= "string" then
    return nil, 400, 1005, "target_url must be a string"
  end
  local u, why = util.parse_url(v)
  if not u then
    return nil, 400, 1005, "target_url is not a valid URL: " .. why
  end
  if not (u.scheme == "https" or (u.scheme == "http" and util.is_loopback_host(u.host))) then
    return nil, 400, 1005, "target_url must be an HTTPS URL (http:// is accepted only for "
      .. "loopback hosts by the emulator)"
  end
  local version = util.query_param(u.query, "version")
  if version and not VERSION[version] then
    return nil, 400, 1005, "target_url asks for an unknown webhook payload version '"
      .. version:sub(1, 40) .. "' (known: " .. table.concat(catalogue.PAYLOAD_VERSIONS, ", ") .. ")"
  end
  return v
end

local function check_events(v)
  if not is_array(v) then
    return nil, 400, 1005, "subscribed_events must be an array of event type strings"
  end
  if #v == 0 then
    return nil, 400, 1005, "subscribed_events must contain at least one event type"
  end
  local out, seen = {}, {}
  for _, e in ipairs(v) do
    if type(e) ~= "string" then
      return nil, 400, 1005, "subscribed_events must contain only strings"
    end
    if not KNOWN_TYPE[e] then
      return nil, 400, 1005, "unknown event type in subscribed_events: " .. e:sub(1, 100)
        .. " (see GET /v3/webhook-events)"
    end
    if not seen[e] then
      seen[e] = true
      out[#out + 1] = e
    end
  end
  return out
end

-- Returns a list, or false for "no filter".
local function check_phones(v)
  if is_null(v) then
    return false
  end
  if not is_array(v) then
    return nil, 400, 1005, "phone_numbers must be an array of E.164 phone numbers or null"
  end
  if #v == 0 then
    return false
  end
  local out, seen = {}, {}
  for _, p in ipairs(v) do
    if not e164(p) then
      return nil, 400, 1002, "Phone number must be in E.164 format: "
        .. (type(p) == "string" and p:sub(1, 40) or type(p))
    end
    if not seen[p] then
      seen[p] = true
      out[#out + 1] = p
    end
  end
  return out
end

local function decode_object(req)
  if req.body == "" then
    return nil, 400, 1003, "request body must be a JSON object"
  end
  local v, err = json.decode(req.body)
  if v == nil then
    return nil, 400, 1003, "malformed JSON in request body: " .. tostring(err)
  end
  if not is_object(v) then
    return nil, 400, 1003, "request body must be a JSON object"
  end
  return v
end

-- Compares two strings in time independent of where they differ.
local function same(a, b)
  if #a ~= #b then
    return false
  end
  local diff = 0
  for i = 1, #a do
    if a:byte(i) ~= b:byte(i) then
      diff = diff + 1
    end
  end
  return diff == 0
end

local function authorized(ctx, req)
  local h = req.headers["authorization"]
  if not h then
    return false
  end
  local token = h:match("^[Bb][Ee][Aa][Rr][Ee][Rr] +(%S+)%s*$")
  return token ~= nil and same(token, ctx.api_key)
end

-------------------------------------------------------------------------------
-- The six v3 operations

-- A target_url already used by another subscription. No Linq source gives the
-- status; the spec declares 400 (BadRequest) for create and update and no
-- 409, so: 400 with code 1005 (invalid_parameter).
local function duplicate_url(trace, other)
  return fail(trace, 400, 1005, "target_url is already used by webhook subscription " .. other.id)
end

local function create(ctx, req, trace)
  local body, st, code, msg = decode_object(req)
  if not body then
    return fail(trace, st, code, msg)
  end
  if is_null(body.target_url) then
    return fail(trace, 400, 1001, "missing required field: target_url")
  end
  if is_null(body.subscribed_events) then
    return fail(trace, 400, 1001, "missing required field: subscribed_events")
  end
  local url, events, phones
  url, st, code, msg = check_url(body.target_url)
  if not url then
    return fail(trace, st, code, msg)
  end
  events, st, code, msg = check_events(body.subscribed_events)
  if not events then
    return fail(trace, st, code, msg)
  end
  phones, st, code, msg = check_phones(body.phone_numbers)
  if phones == nil then
    return fail(trace, st, code, msg)
  end
  local other = ctx.state:find_by_url(url)
  if other then
    return duplicate_url(trace, other)
  end
  local now = util.rfc3339(util.now())
  local sub = ctx.state:add({
    id = util.uuid4(),
    target_url = url,
    subscribed_events = events,
    is_active = true,
    created_at = now,
    updated_at = now,
    phone_numbers = phones or nil,
    secret = util.new_secret(),
  })
  ctx.save()
  return ok(trace, 201, view(sub, true))
end

local function list(ctx, _, trace)
  local out = {}
  for i, s in ipairs(ctx.state.list) do
    out[i] = view(s)
  end
  return ok(trace, 200, { subscriptions = json.array(out) })
end

local function retrieve(_, _, trace, sub)
  return ok(trace, 200, view(sub))
end

local function later_than(prev)
  local now = util.rfc3339(util.now())
  if prev and now <= prev then
    -- Same microsecond (or a clock step back): still move forward.
    -- (bounded: an updated_at far ahead of this clock, e.g. from a state
    -- file written on another machine, is not waited out)
    local t = util.now()
    for _ = 1, 1000 do
      t = t + 0.000001
      local cand = util.rfc3339(t)
      if cand > prev then
        return cand
      end
    end
  end
  return now
end

local function update(ctx, req, trace, sub)
  local body, st, code, msg = decode_object(req)
  if not body then
    return fail(trace, st, code, msg)
  end
  local new = {}
  if body.target_url ~= nil then
    new.target_url, st, code, msg = check_url(body.target_url)
    if not new.target_url then
      return fail(trace, st, code, msg)
    end
  end
  if body.subscribed_events ~= nil then
    new.subscribed_events, st, code, msg = check_events(body.subscribed_events)
    if not new.subscribed_events then
      return fail(trace, st, code, msg)
    end
  end
  if body.is_active ~= nil then
    if type(body.is_active) ~= "boolean" then
      return fail(trace, 400, 1005, "is_active must be a boolean")
    end
    new.is_active = body.is_active
  end
  if body.phone_numbers ~= nil then
    new.phone_numbers, st, code, msg = check_phones(body.phone_numbers)
    if new.phone_numbers == nil then
      return fail(trace, st, code, msg)
    end
  end
  if new.target_url then
    local other = ctx.state:find_by_url(new.target_url, sub.id)
    if other then
      return duplicate_url(trace, other)
    end
    sub.target_url = new.target_url
  end
  if new.subscribed_events then
    sub.subscribed_events = new.subscribed_events
  end
  if new.is_active ~= nil then
    sub.is_active = new.is_active
  end
  if new.phone_numbers ~= nil then
    sub.phone_numbers = new.phone_numbers or nil
  end
  sub.updated_at = later_than(sub.updated_at)
  ctx.save()
  return ok(trace, 200, view(sub))
end

local function delete(ctx, _, trace, sub)
  ctx.state:remove(sub.id)
  ctx.save()
  ctx.on_delete(sub)
  return ok(trace, 204)
end

local function event_list(_, _, trace)
  return ok(trace, 200, { events = json.array({ (table.unpack or unpack)(event_types) }),
                          doc_url = M.DOC_URL })
end

-------------------------------------------------------------------------------
-- Admin endpoints

local function trigger(ctx, req, trace)
  local body, st, code, msg = decode_object(req)
  if not body then
    return fail(trace, st, code, msg)
  end
  if is_null(body.event_type) then
    return fail(trace, 400, 1001, "missing required field: event_type")
  end
  if type(body.event_type) ~= "string" or not KNOWN_TYPE[body.event_type] then
    return fail(trace, 400, 1005, "unknown event_type (see GET /api/partner/v3/webhook-events)")
  end
  if not is_null(body.data) and not is_object(body.data) then
    return fail(trace, 400, 1005, "data must be a JSON object")
  end
  if not is_null(body.phone_number) and not e164(body.phone_number) then
    return fail(trace, 400, 1002, "Phone number must be in E.164 format")
  end
  local data = body.data
  if is_null(data) then
    data = nil
  end
  local phone = not is_null(body.phone_number) and body.phone_number or nil
  local res = ctx.trigger(body.event_type, data, phone)
  return ok(trace, 202, res)
end

local function deliveries(ctx, req, trace)
  if req.method == "DELETE" then
    ctx.clear_deliveries()
    return ok(trace, 204)
  end
  local attempts = ctx.deliveries()
  local want_event = util.query_param(req.query, "event_id")
  local want_sub = util.query_param(req.query, "subscription_id")
  if want_event or want_sub then
    local out = {}
    for _, e in ipairs(attempts) do
      if (not want_event or e.event_id == want_event) and (not want_sub or e.subscription_id == want_sub) then
        out[#out + 1] = e
      end
    end
    attempts = out
  end
  return ok(trace, 200, json.array(attempts))
end

local function method_not_allowed(trace, allow)
  local st, h, b = fail(trace, 405, 1005, "method not allowed; use " .. allow)
  h["Allow"] = allow
  return st, h, b
end

--- Builds the request handler. ctx: api_key, state, save(), trigger(type, data,
-- phone) -> result table, deliveries() -> list, clear_deliveries(), on_delete(sub).
function M.handler(ctx)
  return function(req)
    local trace = util.trace_id()
    local path = req.path:gsub("/+$", "")
    if path:sub(1, 11) == "/_emulator/" then
      if not util.is_loopback_host(req.peer) then
        return fail(trace, 403, 2005, "emulator admin endpoints are available to loopback clients only")
      end
      if path == "/_emulator/events" then
        if req.method ~= "POST" then
          return method_not_allowed(trace, "POST")
        end
        return trigger(ctx, req, trace)
      elseif path == "/_emulator/deliveries" then
        if req.method ~= "GET" and req.method ~= "DELETE" then
          return method_not_allowed(trace, "GET, DELETE")
        end
        return deliveries(ctx, req, trace)
      end
      return fail(trace, 404, 2001, "Resource not found")
    end
    if path:sub(1, 13) ~= "/api/partner/" then
      return fail(trace, 404, 2001, "Resource not found (the API lives under /api/partner/v3)")
    end
    if not authorized(ctx, req) then
      local st, h, b = fail(trace, 401, 2004, "Unauthorized - missing or invalid authentication token")
      h["WWW-Authenticate"] = "Bearer"
      return st, h, b
    end
    local rest = path:sub(13)
    if rest == "/v3/webhook-events" then
      if req.method ~= "GET" then
        return method_not_allowed(trace, "GET")
      end
      return event_list(ctx, req, trace)
    elseif rest == "/v3/webhook-subscriptions" then
      if req.method == "POST" then
        return create(ctx, req, trace)
      elseif req.method == "GET" then
        return list(ctx, req, trace)
      end
      return method_not_allowed(trace, "GET, POST")
    end
    local id = rest:match("^/v3/webhook%-subscriptions/([^/]+)$")
    if not id then
      return fail(trace, 404, 2001, "Resource not found")
    end
    local op
    if req.method == "GET" then
      op = retrieve
    elseif req.method == "PUT" then
      op = update
    elseif req.method == "DELETE" then
      op = delete
    else
      return method_not_allowed(trace, "GET, PUT, DELETE")
    end
    local sub = ctx.state:get(id)
    if not sub then
      return fail(trace, 404, 2001, "Resource not found: no webhook subscription with this id")
    end
    return op(ctx, req, trace, sub)
  end
end

return M
