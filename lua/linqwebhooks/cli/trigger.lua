--- linqwh trigger EVENT_TYPE --to URL --secret whsec_... [--version V] [--id ID] [--data JSON]
-- Builds a sample delivery of EVENT_TYPE as Linq sends it (the emulator's
-- sample payloads), signs it with both header sets and POSTs it to URL;
-- prints the answer's status. Exit 1 on a non-2xx answer or no answer.
local util = require "linqwebhooks.cli.util"

local M = {}

M.VERSIONS = { "2026-02-03", "2025-01-01" }
M.DEFAULT_VERSION = "2026-02-03"
M.PARTNER_ID = "7ac8224b-c41a-54fb-96ed-e28a94f97ff6" -- the emulator's default

function M.define(parser)
  local c = parser:command("trigger", "Send a signed sample delivery of EVENT_TYPE to a webhook endpoint.")
  c:argument("event_type", "Event type from the catalogue, e.g. message.received.")
  c:option("--to", "Endpoint URL (http:// or https://)."):argname("<url>")
  c:option("--secret", "Signing secret whsec_... of the endpoint. Default: $LINQ_WEBHOOK_SECRET.")
    :argname("<whsec_...>")
  c:option("--version", "Payload version (webhook_version). Default: the URL's ?version=, else "
    .. M.DEFAULT_VERSION .. "."):choices(M.VERSIONS)
  c:option("--id", "event_id, also sent as webhook-id (default: a random UUID)."):argname("<id>")
  c:option("--data", "JSON object used as the event's data instead of the sample."):argname("<json>")
  c:option("--phone", "The Linq line (E.164) the sample concerns."):argname("<+1...>")
  c:option("--timeout", "Seconds to wait for the answer."):default("10"):argname("<seconds>")
end

--- The envelope body (a JSON string) of one sample delivery.
function M.build(event_type, version, id, data, phone)
  local json = require "linqwebhooks.json"
  local eutil = require "linqwebhooks.emulator.util"
  if data == nil then
    data = require("linqwebhooks.emulator.samples").data(event_type, version, phone)
    if data == nil then
      return nil, "no sample payload for '" .. event_type .. "' in payload version " .. version
    end
  end
  return json.encode({
    api_version = "v3",
    webhook_version = version,
    event_type = event_type,
    event_id = id,
    created_at = eutil.rfc3339(eutil.now(), 9),
    trace_id = eutil.trace_id(),
    partner_id = M.PARTNER_ID,
    data = data,
  })
end

function M.run(a)
  local cmd = "trigger"
  util.check_event_types({ a.event_type }, cmd, false)
  if not a.to then
    util.usage("option '--to <url>' is required", cmd)
  end
  local eutil = require "linqwebhooks.emulator.util"
  local u = eutil.parse_url(a.to)
  if not u or (a.to:match("^(%a+):") or ""):lower():match("^https?$") == nil then
    util.usage("option '--to' must be an http:// or https:// URL, got '" .. a.to:sub(1, 100) .. "'", cmd)
  end
  local secret = util.secrets(a.secret, cmd)[1]
  local version = a.version or eutil.query_param(u.query, "version") or M.DEFAULT_VERSION
  local id = a.id or eutil.uuid4()
  if id == "" or id:find("[^\33-\126]") or id:find(".", 1, true) then
    util.usage("option '--id' must be printable ASCII without spaces or '.'", cmd)
  end
  local data
  if a.data then
    local json = require "linqwebhooks.json"
    local d, jerr = json.decode(a.data)
    if type(d) ~= "table" or json.is_array(d) then
      util.usage("option '--data' must be a JSON object" .. (jerr and (": " .. jerr) or ""), cmd)
    end
    data = d
  end
  if a.phone and not require("linqwebhooks.e164").valid(a.phone) then
    util.usage("option '--phone' must be an E.164 number like +12025551234", cmd)
  end
  local timeout = util.number(a.timeout, "--timeout", cmd, 0.001, 3600)
  local body, berr = M.build(a.event_type, version, id, data, a.phone)
  if not body then
    util.usage(berr, cmd)
  end
  local linq = require "linqwebhooks"
  local signed = linq.sign{ secret = secret, body = body, id = id, scheme = "both" }
  local headers = {
    ["Content-Type"] = "application/json",
    ["User-Agent"] = "linqwh/" .. tostring(linq.VERSION),
    ["X-Webhook-Event"] = a.event_type,
  }
  for k, v in pairs(signed) do
    headers[k] = v
  end
  local t = require("linqwebhooks.transport.curl").new{ timeout = timeout,
                                                        connect_timeout = math.min(timeout, 10) }
  local res, kind, msg = t:request("POST", a.to, headers, body)
  t:close()
  if not res then
    util.fail(a.event_type .. " " .. id .. " -> " .. a.to .. ": no answer (" .. tostring(kind)
      .. ": " .. tostring(msg) .. ")")
  end
  local answer = (res.body or ""):gsub("[%c]", " "):sub(1, 200)
  local line = string.format("%d %s %s -> %s%s", res.status, a.event_type, id, a.to,
    answer ~= "" and (" (" .. answer .. ")") or "")
  if res.status < 200 or res.status >= 300 then
    util.fail(line)
  end
  util.out(util.redact(line))
end

return M
