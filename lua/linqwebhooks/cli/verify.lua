--- linqwh verify --secret S -H 'name: value' ... [--tolerance N] [--scheme auto|standard|legacy] < body
-- Exit 0 and one "valid ..." line when the headers authenticate the body on
-- stdin; exit 1 and the reason on stderr otherwise.
local util = require "linqwebhooks.cli.util"

local M = {}

function M.define(parser)
  local c = parser:command("verify", "Verify the body read from stdin against signature headers.")
  util.secret_option(c)
  c:option("-H --header", "A request header 'name: value' (repeat; e.g. the lines `linqwh sign` prints).")
    :count("*"):argname("<'name: value'>")
  c:option("--tolerance", "Seconds a timestamp may differ from now (0 = no check).")
    :default("300"):argname("<seconds>")
  c:option("--scheme", "auto: the Standard Webhooks headers when present, else the legacy ones.")
    :choices({ "auto", "standard", "legacy" }):default("auto")
end

--- Parses 'name: value' lines into a header table (repeated names -> arrays).
function M.parse_headers(list, cmd)
  local headers = {}
  for _, line in ipairs(list) do
    local name, value = line:match("^%s*([!#$%%&'*+%-.^_`|~%w]+)%s*:%s*(.-)%s*$")
    if not name then
      util.usage("option '-H' must be 'name: value', got '" .. line:sub(1, 80) .. "'", cmd)
    end
    local cur = headers[name]
    if cur == nil then
      headers[name] = value
    elseif type(cur) == "table" then
      cur[#cur + 1] = value
    else
      headers[name] = { cur, value }
    end
  end
  return headers
end

function M.run(a)
  local secrets = util.secrets(a.secret, "verify")
  local headers = M.parse_headers(a.header, "verify")
  local tol = util.number(a.tolerance, "--tolerance", "verify", 0, 10 * 365 * 86400, true)
  local body = util.read_stdin()
  local linq = require "linqwebhooks"
  local v = linq.verifier{ secrets = secrets, tolerance = tol > 0 and tol or false, scheme = a.scheme }
  local info, err = v:verify(body, headers)
  v:close()
  if not info then
    util.fail("invalid: " .. tostring(err.reason) .. ": " .. tostring(err.message))
  end
  util.out("valid: scheme=", info.scheme, " key_index=", tostring(info.key_index),
    info.id and (" id=" .. info.id) or "", " timestamp=", string.format("%d", info.timestamp))
end

return M
