--- URLs: the one parser, loopback test and path-segment escaping used by the
-- API client, the cosocket transport and the emulator.
--
--   local url = require "linqwebhooks.url"
--   local u, why = url.parse("http://[::1]:8080/api?x=1#f")
--   -- u = { scheme = "http", host = "::1", ipv6 = true, port = 8080, default_port = false,
--   --       authority = "[::1]:8080", host_header = "[::1]:8080",
--   --       target = "/api?x=1", path = "/api", query = "x=1" }
--   url.is_loopback("127.0.0.1")         --> true  ("[::1]", "::1", "localhost", "LOCALHOST."
--                                        --         and "::ffff:127.0.0.1" too)
--   url.is_loopback("127.999.0.1")       --> false (not an IPv4 address)
--   url.escape_segment("a/b")            --> "a%2Fb"
--
-- Rules (strict on purpose: the loopback test grants http:// with an API key
-- and a proxy bypass, so anything unusual is "not loopback"):
-- * parse: `scheme://host[:port][/path][?query][#fragment]`; no whitespace
--   or control characters; no user:password@; host is a name of letters,
--   digits, '.', '-' and '_', or a bracketed IPv6 literal (validated);
--   port 1..65535 (default 80 for http, 443 for https, nil for other
--   schemes); the fragment is dropped; an empty path is "/". Scheme and host
--   are lower-cased.
-- * is_loopback: "localhost" (any case, one optional trailing dot); IPv4
--   dotted quads in canonical decimal (no leading zeros, each part 0-255)
--   in 127.0.0.0/8; the IPv6 loopback ::1 in any spelling; IPv4-mapped
--   ::ffff:127.x.y.z (dotted or hex). Not loopback: other names
--   (foo.localhost), inet_aton shorthands (127.1, 0x7f.1, 2130706433,
--   0177.0.0.1), out-of-range parts (127.999.0.1), IPv4-compatible ::127.0.0.1.
local M = {}

local DEFAULT_PORTS = { http = 80, https = 443 }
M.DEFAULT_PORTS = DEFAULT_PORTS

--- Four numbers for a canonical dotted-quad IPv4 address, or nil.
local function ipv4_parts(s)
  local a, b, c, d = s:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then
    return nil
  end
  local p = { a, b, c, d }
  for i = 1, 4 do
    local x = p[i]
    if #x > 3 or (#x > 1 and x:sub(1, 1) == "0") or tonumber(x) > 255 then
      return nil
    end
    p[i] = tonumber(x)
  end
  return p
end
M.ipv4_parts = ipv4_parts

--- Eight 16-bit numbers for an IPv6 address (no brackets, no zone), or nil.
local function ipv6_groups(s)
  if #s < 2 or #s > 45 or s:find("[^%x:.]") then
    return nil
  end
  -- an embedded IPv4 tail becomes two groups
  local tail = {}
  local head = s
  if s:find(".", 1, true) then
    local pre, v4 = s:match("^(.*:)([%d.]+)$")
    local p = v4 and ipv4_parts(v4)
    if not p then
      return nil
    end
    head = pre
    tail = { p[1] * 256 + p[2], p[3] * 256 + p[4] }
    if head:sub(-2) ~= "::" then
      head = head:sub(1, -2) -- "a:b:" -> "a:b"
    end
  end
  local function groups(part)
    local g = {}
    if part == "" then
      return g
    end
    for x in (part .. ":"):gmatch("([^:]*):") do
      if x == "" or #x > 4 then
        return nil
      end
      g[#g + 1] = tonumber(x, 16)
    end
    return g
  end
  local out
  local dc = head:find("::", 1, true)
  if dc then
    if head:find("::", dc + 1, true) then
      return nil
    end
    local left, right = groups(head:sub(1, dc - 1)), groups(head:sub(dc + 2))
    if not left or not right then
      return nil
    end
    local fill = 8 - #left - #right - #tail
    if fill < 1 then
      return nil
    end
    out = left
    for _ = 1, fill do
      out[#out + 1] = 0
    end
    for _, x in ipairs(right) do
      out[#out + 1] = x
    end
  else
    out = groups(head)
    if not out then
      return nil
    end
  end
  for _, x in ipairs(tail) do
    out[#out + 1] = x
  end
  if #out ~= 8 then
    return nil
  end
  return out
end
M.ipv6_groups = ipv6_groups

--- True when `host` (a name or address, IPv6 with or without brackets)
-- certainly names this machine; see the rules at the top.
function M.is_loopback(host)
  if type(host) ~= "string" then
    return false
  end
  host = host:lower()
  if host == "localhost" or host == "localhost." then
    return true
  end
  local p = ipv4_parts(host)
  if p then
    return p[1] == 127
  end
  local inner = host:match("^%[(.*)%]$") or host
  local g = ipv6_groups(inner)
  if not g then
    return false
  end
  for i = 1, 5 do
    if g[i] ~= 0 then
      return false
    end
  end
  if g[6] == 0 and g[7] == 0 then
    return g[8] == 1 -- ::1
  end
  -- ::ffff:127.x.y.z (IPv4-mapped)
  return g[6] == 0xffff and math.floor(g[7] / 256) == 127
end

--- Parses an absolute URL (see the rules at the top). Returns a table or
-- nil, reason (a phrase that reads after "URL ...", never the URL itself).
function M.parse(s)
  if type(s) ~= "string" then
    return nil, "is not a string"
  end
  if s:find("[%c%s]") then
    return nil, "contains whitespace or control characters"
  end
  local scheme, rest = s:match("^(%a[%w+.-]*)://(.*)$")
  if not scheme then
    return nil, "is not an absolute URL"
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
  local host, port, ipv6
  if authority:sub(1, 1) == "[" then
    host, port = authority:match("^%[([^%]]*)%]:?(%d*)$")
    if not host or not ipv6_groups(host) then
      return nil, "has no valid host"
    end
    ipv6 = true
  else
    host, port = authority:match("^([%w._-]+):?(%d*)$")
    if not host then
      return nil, "has no valid host"
    end
  end
  if authority:sub(-1) == ":" then
    return nil, "has an invalid port"
  end
  local default = DEFAULT_PORTS[scheme]
  local nport = default
  if port ~= "" then
    nport = #port <= 5 and tonumber(port) or nil
    if not nport or nport < 1 or nport > 65535 then
      return nil, "has an invalid port"
    end
  end
  host = host:lower()
  local host_header = ipv6 and ("[" .. host .. "]") or host
  if nport and nport ~= default then
    host_header = host_header .. ":" .. nport
  end
  local path, query = target:match("^([^?]*)%??(.*)$")
  return {
    scheme = scheme,
    host = host,
    ipv6 = ipv6 or false,
    port = nport,
    default_port = nport == default,
    authority = authority,
    host_header = host_header,
    target = target,
    path = path,
    query = target:find("?", 1, true) and query or nil,
  }
end

local function escape_char(c)
  return string.format("%%%02X", c:byte())
end

--- Escapes a string for use as one path segment: everything but RFC 3986
-- unreserved characters is percent-encoded, and the dot segments "." and
-- ".." (which would be removed from the path) become "%2E" / "%2E%2E".
function M.escape_segment(id)
  if id == "." or id == ".." then
    return (id:gsub("%.", "%%2E"))
  end
  if not id:find("[^%w%-%._~]") then
    return id
  end
  return (id:gsub("[^%w%-%._~]", escape_char))
end

return M
