--- libcurl transport (blocking), on `linqwebhooks.http.http_client`.
-- One easy handle per transport object, reused so connections stay alive.
--
--   local t = require("linqwebhooks.transport.curl").new{ timeout = 60, connect_timeout = 10,
--                                                          ca_file = nil, max_body = 8 * 2^20,
--                                                          proxy = nil }
--   -- proxy: nil = libcurl's environment (https_proxy, ALL_PROXY, NO_PROXY, ...;
--   --   libcurl never reads HTTP_PROXY in upper case), false = never a proxy,
--   --   or a proxy URL
--   local res, kind, msg = t:request(method, url, headers, body)
--   -- res = { status = n, headers = { [lowercase name] = value }, body = s, http_version = n }
--   -- failure: nil, "timeout" | "connection", message (no secrets), detail:
--   --   "too_large" (body over max_body), "tls" (certificate problem), "not_sent"
--   --   (failed before the request left: always safe to retry) or nil
--   t:close()  -- idempotent
local http = require "linqwebhooks.http"
local options = require "linqwebhooks.options"

local M = { name = "curl" }

--- Blocking sleep between retries.
M.sleep = http.sleep

--- Token for the User-Agent header.
M.user_agent = "libcurl/" .. tostring(http.curl_version)

-- Response objects: `headers` is parsed from the raw header lines on first
-- access (the client reads headers only on errors and retries).
local function parse_headers(raw)
  local h = {}
  for k, v in raw:gmatch("([^:\n]+):([^\n]*)\n") do
    local old = h[k]
    h[k] = old and (old .. ", " .. v) or v
  end
  return h
end
M.parse_headers = parse_headers

local Response = {
  __index = function(res, k)
    if k == "headers" then
      local h = parse_headers(rawget(res, "raw_headers") or "")
      rawset(res, "headers", h)
      return h
    end
  end,
}

local Transport = {}
Transport.__index = Transport
M.Transport = Transport

local positive = options.positive_seconds

local schema = {
  timeout = { types = { "number" }, check = positive },
  connect_timeout = { types = { "number" }, check = positive },
  ca_file = "string",
  max_body = { types = { "number" }, check = options.body_bytes },
  proxy = { types = { "string", "boolean" }, check = function(v)
    if v == true then
      return false, "must be a proxy URL or false"
    end
    return true
  end },
}

function M.new(opts, level)
  opts = options.check("transport.curl.new", opts, schema, (level or 1) + 1)
  local h = http.http_client{
    timeout_ms = math.floor((opts.timeout or 60) * 1000 + 0.5),
    connect_timeout_ms = math.floor((opts.connect_timeout or 10) * 1000 + 0.5),
    ca_file = opts.ca_file,
    max_body = opts.max_body and math.floor(opts.max_body) or nil,
    raw_headers = true,
    proxy = (opts.proxy == false and "") or opts.proxy or nil,
  }
  return setmetatable({ h = h }, Transport)
end

function Transport:request(method, url, headers, body)
  local h = self.h
  if not h then
    error("transport.curl: request() on a closed transport", 2)
  end
  local status, hdrs, rbody, ver = h:request(method, url, headers, body)
  if not status then
    if hdrs == "too_large" then
      return nil, "connection", rbody, "too_large"
    end
    return nil, hdrs, rbody, ver -- ver: detail "tls" | "not_sent" | nil
  end
  return setmetatable({ status = status, raw_headers = hdrs, body = rbody, http_version = ver }, Response)
end

function Transport:close()
  local h = self.h
  if h then
    self.h = nil
    h:close()
  end
end

return M
