--- Small helpers for the emulator: ids, timestamps, base64, URL parsing.
-- Runs on Lua 5.4 and LuaJIT (no bitwise operators).
local core = require "linqwebhooks.core"
local socket = require "socket"

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

--- True for loopback host names / addresses (IPv4 127/8, ::1, localhost).
function M.is_loopback_host(host)
  if type(host) ~= "string" then
    return false
  end
  host = host:lower()
  if host == "localhost" or host == "::1" or host == "[::1]" then
    return true
  end
  local a, b, c, d = host:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if a and tonumber(a) == 127 and tonumber(b) < 256 and tonumber(c) < 256 and tonumber(d) < 256 then
    return true
  end
  local v4 = host:match("^::ffff:(%d+%.%d+%.%d+%.%d+)$")
  if v4 then
    return M.is_loopback_host(v4)
  end
  return false
end

--- Parses an absolute http(s) URL.
-- Returns { scheme, host (brackets stripped), port, authority, target (path?query), query }
-- or nil, reason.
function M.parse_url(url)
  if type(url) ~= "string" then
    return nil, "not a string"
  end
  if #url > 2048 then
    return nil, "longer than 2048 characters"
  end
  if url:find("[%c%s]") then
    return nil, "contains whitespace or control characters"
  end
  local scheme, rest = url:match("^(%a[%w+.-]*)://(.*)$")
  if not scheme then
    return nil, "not an absolute URL"
  end
  scheme = scheme:lower()
  local authority, target = rest:match("^([^/?#]*)(.*)$")
  target = target:gsub("#.*$", "")
  if target == "" or target:sub(1, 1) == "?" then
    target = "/" .. target
  end
  if authority:find("@", 1, true) then
    return nil, "must not contain credentials"
  end
  local host, port
  if authority:sub(1, 1) == "[" then
    host, port = authority:match("^%[([%x:.]+)%]:?(%d*)$")
  else
    host, port = authority:match("^([%w.-]+):?(%d*)$")
  end
  if not host or host == "" then
    return nil, "has no valid host"
  end
  if port == "" then
    port = (scheme == "https") and 443 or 80
  else
    port = tonumber(port)
    if port < 1 or port > 65535 then
      return nil, "has an invalid port"
    end
  end
  return {
    scheme = scheme,
    host = host:lower(),
    port = port,
    authority = authority,
    target = target,
    query = target:match("%?(.*)$"),
  }
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
