--- linqwh subscriptions list | get ID | create ... | update ID ... | delete ID | events
-- Webhook subscriptions of the Linq API (or the emulator): the API key from
-- --api-key or $LINQ_API_V3_API_KEY (never printed), the base URL from
-- --base-url or $LINQ_API_V3_BASE_URL. Table output, --json for JSON.
--
-- Each action is an entry of M.ACTIONS (name, help, define(cmd), run(a, client));
-- more actions (plan FILE, apply FILE, rotate ID) are added by appending
-- entries, from this module or another one.
local util = require "linqwebhooks.cli.util"

local M = {}

local commands -- loaded on first use (below)

local CMD = "subscriptions"

local function common(c)
  c:option("--api-key", "API key (default: $LINQ_API_V3_API_KEY; never printed)."):argname("<key>")
  c:option("--base-url", "API base URL (default: $LINQ_API_V3_BASE_URL, else Linq's)."):argname("<url>")
  c:option("--timeout", "Seconds per request."):default("30"):argname("<seconds>")
  c:flag("--json", "JSON output.")
end

local FIELDS = { "id", "target_url", "subscribed_events", "is_active", "phone_numbers",
                 "created_at", "updated_at" }

--- A plain table of a subscription's fields (no methods, no secret).
local function plain(sub)
  local json = require "linqwebhooks.json"
  local o = {}
  for k, v in pairs(sub) do
    if k ~= "signing_secret" then
      o[k] = v
    end
  end
  if sub.phone_numbers == nil then
    o.phone_numbers = json.null
  end
  return o
end

local function list_str(v)
  if type(v) ~= "table" then
    return v == nil and "-" or tostring(v)
  end
  return #v == 0 and "-" or table.concat(v, ",")
end

local function print_one(a, sub)
  if a.json then
    return util.print_json(plain(sub))
  end
  for _, k in ipairs(FIELDS) do
    local v = sub[k]
    util.out(util.redact(string.format("%-18s %s", k .. ":", type(v) == "table" and list_str(v)
      or (v == nil and "-" or tostring(v)))))
  end
end

local function api_fail(err)
  if type(err) == "table" and err.kind == "invalid_request" then
    util.usage(tostring(err.message or err), CMD)
  end
  util.fail(tostring(err))
end

local function bool_arg(v, name)
  if v == nil then
    return nil
  end
  if v == "true" then
    return true
  elseif v == "false" then
    return false
  end
  util.usage("option '" .. name .. "' must be true or false, got '" .. v .. "'", CMD)
end

local function phones(a)
  if a.all_phones then
    return require("linqwebhooks").null
  end
  if #a.phone == 0 then
    return nil
  end
  local json = require "linqwebhooks.json"
  return json.array(util.split_list(a.phone))
end

local function events_arg(v)
  if v == nil or #v == 0 then
    return nil
  end
  local json = require "linqwebhooks.json"
  return json.array(util.check_event_types(util.split_list(v), CMD, false))
end

M.ACTIONS = {
  { name = "list", help = "List the subscriptions.",
    define = function() end,
    run = function(a, client)
      local subs, err = client.webhook_subscriptions:list()
      if not subs then
        api_fail(err)
      end
      if a.json then
        local json = require "linqwebhooks.json"
        local out = json.array()
        for i, s in ipairs(subs) do
          out[i] = plain(s)
        end
        return util.print_json(out)
      end
      local rows = {}
      for _, s in ipairs(subs) do
        rows[#rows + 1] = { s.id, s.is_active and "yes" or "no", s.target_url,
                            list_str(s.subscribed_events), list_str(s.phone_numbers) }
      end
      util.print_table({ "ID", "ACTIVE", "URL", "EVENTS", "PHONES" }, rows)
    end },
  { name = "get", help = "Show one subscription.",
    define = function(c) c:argument("id", "Subscription id.") end,
    run = function(a, client)
      local sub, err = client.webhook_subscriptions:retrieve(a.id)
      if not sub then
        api_fail(err)
      end
      print_one(a, sub)
    end },
  { name = "create", help = "Create a subscription. The API shows its signing secret only once:"
      .. " pass --secret-file PATH (written with mode 0600) or --show-secret.",
    define = function(c)
      c:option("--url", "Target URL (https://; http:// on loopback for the emulator)."):argname("<url>")
      c:option("--events", "Event types, comma-separated (repeatable)."):count("*"):argname("<a,b>")
      c:option("--phone", "Only events of these Linq lines (E.164, comma-separated, repeatable).")
        :count("*"):argname("<+1...>")
      c:option("--secret-file", "Write the new signing secret, the bare whsec_... string, to this file"
        .. " (mode 0600). Not the JSON secrets file of --secrets-file and linq.webhooks{ secrets_file }:"
        .. " `subscriptions apply` writes that one."):argname("<path>")
      c:flag("--show-secret", "Print the new signing secret on stdout.")
    end,
    run = function(a, client)
      if not a.url then
        util.usage("option '--url <url>' is required", CMD)
      end
      local ev = events_arg(a.events)
      if not ev then
        util.usage("option '--events <a,b>' is required", CMD)
      end
      if not a.secret_file and not a.show_secret then
        util.usage("the API returns the signing secret only once: pass --secret-file PATH"
          .. " (or --show-secret to print it)", CMD)
      end
      local sub, err = client.webhook_subscriptions:create{ target_url = a.url, subscribed_events = ev,
                                                            phone_numbers = phones(a) }
      if not sub then
        api_fail(err)
      end
      local secret = sub.signing_secret
      if a.secret_file then
        local f, ferr = io.open(a.secret_file, "wb")
        if not f then
          util.fail("subscription " .. sub.id .. " created, but the secret file cannot be written: "
            .. tostring(ferr) .. " (delete it and create it again)")
        end
        util.native("chmod")(a.secret_file, 384) -- 0600, before the secret is in it
        f:write(tostring(secret), "\n")
        f:close()
      end
      if a.json then
        local o = plain(sub)
        if a.show_secret then
          o.signing_secret = secret
        end
        local json = require "linqwebhooks.json"
        util.out(assert(json.encode(o)))
      else
        print_one(a, sub)
        if a.show_secret then
          util.out("signing_secret:    ", tostring(secret))
        else
          util.out("signing_secret:    (written to ", a.secret_file, ")")
        end
      end
    end },
  { name = "update", help = "Change a subscription (only the options given).",
    define = function(c)
      c:argument("id", "Subscription id.")
      c:option("--url", "New target URL."):argname("<url>")
      c:option("--events", "New event types, comma-separated (repeatable)."):count("*"):argname("<a,b>")
      c:option("--active", "Activate (true) or deactivate (false)."):argname("<true|false>")
      c:option("--phone", "New line filter (E.164, comma-separated, repeatable).")
        :count("*"):argname("<+1...>")
      c:flag("--all-phones", "Remove the line filter (events of every line).")
    end,
    run = function(a, client)
      local params = { target_url = a.url, subscribed_events = events_arg(a.events),
                       is_active = bool_arg(a.active, "--active"), phone_numbers = phones(a) }
      if next(params) == nil then
        util.usage("nothing to change: give --url, --events, --active, --phone or --all-phones", CMD)
      end
      local sub, err = client.webhook_subscriptions:update(a.id, params)
      if not sub then
        api_fail(err)
      end
      print_one(a, sub)
    end },
  { name = "delete", help = "Delete a subscription.",
    define = function(c) c:argument("id", "Subscription id.") end,
    run = function(a, client)
      local ok, err = client.webhook_subscriptions:delete(a.id)
      if not ok then
        api_fail(err)
      end
      if a.json then
        util.print_json({ id = a.id, deleted = true })
      else
        util.out("deleted ", a.id)
      end
    end },
  { name = "events", help = "List the event types the API offers.",
    define = function() end,
    run = function(a, client)
      local res, err = client.webhook_events:list()
      if not res then
        api_fail(err)
      end
      if a.json then
        return util.print_json(res)
      end
      for _, e in ipairs(res.events) do
        util.out(type(e) == "table" and tostring(e.name or e.event_type or e.type) or tostring(e))
      end
    end },
  -- subscriptions as code (linqwebhooks.subscriptions.commands does the work
  -- and returns text that never holds a secret, or nil, message, exit status)
  { name = "plan", help = "Compare FILE (a JSON array of desired subscriptions, or a .lua file"
      .. " returning one) with the account; changes nothing.",
    define = function(c)
      c:argument("file", "Desired subscriptions.")
      c:flag("--prune", "Also show the subscriptions apply --prune would delete.")
    end,
    run = function(a, client)
      M.finish(commands().plan(client, a.file, { prune = a.prune }))
    end },
  { name = "apply", help = "Make the account match FILE: create, update (and with --prune delete)."
      .. " New signing secrets go to --secrets-file (mode 0600), never to the terminal.",
    define = function(c)
      c:argument("file", "Desired subscriptions.")
      c:flag("--prune", "Delete subscriptions that are not in FILE.")
      c:option("--secrets-file", "Secrets file for new signing secrets (JSON, 0600).")
        :argname("<path>")
    end,
    run = function(a, client)
      M.finish(commands().apply(client, a.file, { prune = a.prune, secrets_file = a.secrets_file }))
    end },
  { name = "rotate", help = "Rotate a subscription's signing secret without downtime (twin,"
      .. " confirm, retire the old one); resumable.",
    define = function(c)
      c:argument("id", "Subscription id.")
      c:option("--secrets-file", "Secrets file the receiver reads (JSON, 0600).")
        :argname("<path>")
      c:option("--confirm-timeout", "Seconds to wait for the receiver to confirm the new key.", "600")
        :argname("<seconds>")
    end,
    run = function(a, client)
      if not a.secrets_file then
        util.usage("option '--secrets-file <path>' is required (the new secret is written there)", CMD)
      end
      local timeout = tonumber(a.confirm_timeout)
      if not timeout or timeout <= 0 then
        util.usage("option '--confirm-timeout' must be a number of seconds > 0", CMD)
      end
      M.finish(commands().rotate(client, a.id, { secrets_file = a.secrets_file, timeout = timeout,
        progress = function(line) io.stderr:write(util.redact(line), "\n") end }))
    end },
}

commands = function()
  return require "linqwebhooks.subscriptions.commands"
end

--- Prints a command's text, or fails with its message and exit status.
function M.finish(text, err, status)
  if not text then
    if status == 2 then
      util.usage(tostring(err), CMD)
    end
    util.fail(tostring(err))
  end
  util.out(util.redact(text))
end

function M.define(parser)
  util.define_actions(parser, "subscriptions",
    "Manage webhook subscriptions (Linq API or the emulator).", M.ACTIONS, common)
end

local function is_loopback_url(url)
  local host = url:match("^%a+://%[?([^%]/:?#]+)")
  return host == "localhost" or host == "::1" or (host and host:match("^127%.%d+%.%d+%.%d+$")) ~= nil
end

function M.client(a)
  local key = a.api_key or util.getenv("LINQ_API_V3_API_KEY")
  if not key then
    util.usage("no API key: set LINQ_API_V3_API_KEY or pass --api-key", CMD)
  end
  util.hide(key)
  local base = a.base_url or util.getenv("LINQ_API_V3_BASE_URL")
  local timeout = util.number(a.timeout, "--timeout", CMD, 0.001, 3600)
  local linq = require "linqwebhooks"
  local ok, client = pcall(linq.client, { api_key = key, base_url = base, timeout = timeout,
                                          connect_timeout = math.min(timeout, 10),
                                          allow_http_targets = base ~= nil and is_loopback_url(base) })
  if not ok then
    util.usage(tostring(client):gsub("^.-linq%.client: ", ""), CMD)
  end
  return client
end

function M.run(a)
  util.run_action(a, M.ACTIONS, CMD, M.client, function(client)
    client:close()
  end)
end

return M
