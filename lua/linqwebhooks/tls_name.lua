--- Host name check for LuaSec connections (LuaSec verifies the chain, not
-- the name), shared by linqwebhooks.redis and the emulator's delivery:
-- an IP address (v4, or v6 with a ':') matches a subjectAltName iPAddress
-- entry, a name a dNSName entry (`*.example.com` covers exactly one label);
-- without subjectAltName, the subject's CN. Case-insensitive.
local M = {}

local function match_name(pattern, host)
  pattern, host = pattern:lower(), host:lower()
  if pattern == host then
    return true
  end
  local rest = pattern:match("^%*(%..+)$") -- *.example.com matches one label
  return rest ~= nil and host:sub(-#rest) == rest and not host:sub(1, -#rest - 1):find("[.]")
    and #host > #rest
end

--- tls_name.matches(cert, host) -> boolean (cert: a LuaSec certificate)
function M.matches(cert, host)
  local ext = cert:extensions() or {}
  local san = ext["2.5.29.17"]
  if san then
    local ip = host:match("^%d+%.%d+%.%d+%.%d+$") or host:find(":", 1, true)
    for _, v in ipairs((ip and san.iPAddress or san.dNSName) or {}) do
      if ip and v:lower() == host:lower() or not ip and match_name(v, host) then
        return true
      end
    end
    return false
  end
  for _, e in ipairs(cert:subject() or {}) do
    if e.name == "CN" and match_name(e.value, host) then
      return true
    end
  end
  return false
end

return M
