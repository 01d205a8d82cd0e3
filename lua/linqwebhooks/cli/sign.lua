--- linqwh sign --secret S [--id ID] [--timestamp T] [--scheme standard|legacy|both] < body
-- Prints the signature headers of the body on stdin, one "name: value" line
-- each (ready for curl -H or linqwh verify -H).
local util = require "linqwebhooks.cli.util"

local M = {}

M.ORDER = { "webhook-id", "webhook-timestamp", "webhook-signature",
            "X-Webhook-Timestamp", "X-Webhook-Signature" }

function M.define(parser)
  local c = parser:command("sign", "Sign the body read from stdin; print the headers, one 'name: value' line each.")
  util.secret_option(c, ": one signature per key")
  c:option("--id", "webhook-id (default: a random msg_... id)."):argname("<id>")
  c:option("--timestamp", "Unix seconds (default: now)."):argname("<seconds>")
  c:option("--scheme", "Header set(s): standard (webhook-*), legacy (X-Webhook-*), or both as Linq sends.")
    :choices({ "standard", "legacy", "both" }):default("both")
end

function M.run(a)
  local secrets = util.secrets(a.secret, "sign")
  local ts
  if a.timestamp then
    if not a.timestamp:match("^%d+$") or #a.timestamp > 18 then
      util.usage("option '--timestamp' must be unix seconds (digits), got '" .. a.timestamp .. "'", "sign")
    end
    ts = a.timestamp
  end
  if a.id and (a.id == "" or a.id:find("[^\33-\126]") or a.id:find(".", 1, true)) then
    util.usage("option '--id' must be printable ASCII without spaces or '.'", "sign")
  end
  local body = util.read_stdin()
  local linq = require "linqwebhooks"
  local ok, headers = pcall(linq.sign, { secrets = secrets, body = body, id = a.id, timestamp = ts,
                                         scheme = a.scheme })
  if not ok then
    util.usage(tostring(headers):gsub("^.-linq%.sign: ", ""), "sign")
  end
  for _, name in ipairs(M.ORDER) do
    if headers[name] then
      util.out(name, ": ", headers[name])
    end
  end
end

return M
