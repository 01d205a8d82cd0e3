--- Small helpers for the emulator: ids, timestamps, base64, URL parsing.
-- Runs on Lua 5.4 and LuaJIT (no bitwise operators).
local core = require "linqwebhooks.core"
local socket = require "socket"
local url = require "linqwebhooks.url"

local M = {}

local floor = math.floor

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end
M.hex = hex

--- Random UUID version 4 (RFC 9562) from OpenSSL's CSPRNG.
function M.uuid4()
  local b = { core.random_bytes(16):byte(1, 16) }
  b[7] = b[7] % 16 + 64   -- version 4
  b[9] = b[9] % 64 + 128  -- variant 10xx
  local h = hex(string.char((table.unpack or unpack)(b)))
  return h:sub(1, 8) .. "-" .. h:sub(9, 12) .. "-" .. h:sub(13, 16) .. "-" .. h:sub(17, 20)
    .. "-" .. h:sub(21, 32)
end

--- 32 lowercase hex characters, as in Linq's trace ids.
function M.trace_id()
  return hex(core.random_bytes(16))
end

--- Wall-clock seconds with sub-second precision.
function M.now()
  return socket.gettime()
end

--- RFC 3339 UTC timestamp; `digits` fractional digits (0, 3, 6 or 9).
function M.rfc3339(t, digits)
  t = t or M.now()
  digits = digits or 6
  local sec = floor(t)
  local s = os.date("!%Y-%m-%dT%H:%M:%S", sec)
  if digits > 0 then
    local frac = floor((t - sec) * 10 ^ math.min(digits, 6) + 0.5)
    if frac >= 10 ^ math.min(digits, 6) then
      frac = 10 ^ math.min(digits, 6) - 1
    end
    local f = string.format("%0" .. math.min(digits, 6) .. "d", frac)
    if digits > 6 then
      f = f .. string.rep("0", digits - 6)
    end
    s = s .. "." .. f
  end
  return s .. "Z"
end

--- Standard base64 with padding (OpenSSL, through the C core).
M.b64encode = core.base64_encode

--- A fresh signing secret: "whsec_" + base64 of 32 random bytes.
M.new_secret = core.new_secret

--- True for loopback host names / addresses (linqwebhooks.url.is_loopback:
-- 127.0.0.0/8 dotted quads, ::1, ::ffff:127.x.y.z, localhost).
M.is_loopback_host = url.is_loopback

--- Parses an absolute http(s) URL of at most 2048 characters
-- (linqwebhooks.url.parse). Returns { scheme, host (brackets stripped),
-- port, authority, target (path?query), query, ... } or nil, reason.
function M.parse_url(s)
  if type(s) == "string" and #s > 2048 then
    return nil, "longer than 2048 characters"
  end
  return url.parse(s)
end

--- Value of a query parameter (no percent-decoding needed for versions).
function M.query_param(query, name)
  if not query then
    return nil
  end
  for pair in query:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    if k == name then
      return v
    end
  end
  return nil
end

--- Quotes a value as a Lua literal (options for a spawned child).
local function serialize(v, depth)
  depth = depth or 0
  if depth > 8 then
    error("options nested too deeply", 0)
  end
  local t = type(v)
  if t == "string" then
    return string.format("%q", v)
  elseif t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then
      error("cannot pass a non-finite number to the child", 0)
    end
    if v == floor(v) and math.abs(v) < 2 ^ 53 then
      return string.format("%d", v)
    end
    return string.format("%.17g", v)
  elseif t == "boolean" then
    return tostring(v)
  elseif t == "table" then
    local parts = {}
    for k, x in pairs(v) do
      if type(k) ~= "string" and type(k) ~= "number" then
        error("cannot pass a " .. type(k) .. " key to the child", 0)
      end
      parts[#parts + 1] = "[" .. serialize(k, depth + 1) .. "]=" .. serialize(x, depth + 1)
    end
    table.sort(parts)
    return "{" .. table.concat(parts, ",") .. "}"
  end
  error("cannot pass a " .. t .. " value to the child", 0)
end
M.serialize = serialize

return M
