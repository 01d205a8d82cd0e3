---@meta linqwebhooks.url
-- `require "linqwebhooks.url"`: the one URL parser, loopback test and path
-- segment escaping (client, cosocket transport, emulator).

---@class linqwebhooks.ParsedURL
---@field scheme string lower-cased
---@field host string lower-cased; IPv6 without brackets
---@field ipv6 boolean
---@field port integer|nil nil for schemes other than http/https without a port
---@field default_port boolean
---@field authority string
---@field host_header string
---@field target string path and query
---@field path string "/" when empty
---@field query string|nil

---@class linqwebhooks.url
---@field DEFAULT_PORTS table<string, integer>
local url = {}

---Strict: no whitespace, no user:password@, ports 1-65535; the fragment is dropped.
---@param s string
---@return linqwebhooks.ParsedURL|nil u
---@return string|nil reason a phrase that reads after "URL ...", never the URL itself
function url.parse(s) end

---"localhost", 127.0.0.0/8 in canonical dotted quads, ::1, ::ffff:127.x.y.z.
---@param host string
---@return boolean
function url.is_loopback(host) end

---@param s string
---@return string escaped everything but RFC 3986 unreserved characters percent-encoded
function url.escape_segment(s) end

return url
