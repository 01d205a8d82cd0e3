--- Subscriptions as code: compare a desired list of webhook subscriptions
-- with what the account has (plan), and make the account match (apply).
--
--   local plan = client.webhook_subscriptions:plan(desired)
--   local done, err = client.webhook_subscriptions:apply(desired, { prune = false,
--     on_secret = function(sub, secret) end, secrets_file = "/etc/app/linq-secrets.json" })
--   print(require("linqwebhooks.subscriptions.desired").format_plan(plan))
--
-- desired: an array of { target_url, subscribed_events, phone_numbers?, is_active? }.
-- Subscriptions are matched by target_url with the rotation marker query
-- parameter (M.MARKER, "linqwh_rotation=<n>", added by rotate) removed.
local json = require "linqwebhooks.json"
local errors = require "linqwebhooks.errors"
local options = require "linqwebhooks.options"

local M = {}

--- The query parameter that tells twin subscriptions of one endpoint apart.
M.MARKER = "linqwh_rotation"

--- The line filter of a twin whose rotation has not been confirmed yet
-- (see linqwebhooks.subscriptions.rotation; NANP fictional 555-01xx range).
M.PARKING_NUMBER = "+12025550199"

local function parked(s)
  local p = s.phone_numbers
  return type(p) == "table" and #p == 1 and p[1] == M.PARKING_NUMBER
end
M.parked = parked

-- Seconds an old secret stays valid after its subscription is gone: a
-- delivery signed before that is outside the verifier's timestamp tolerance
-- (300 s by default) afterwards anyway.
M.OLD_SECRET_GRACE = 300

------------------------------------------------------------------------------
-- the rotation marker

local function split_url(url)
  local head, rest = url:match("^([^?#]*)(.*)$")
  local query, frag = nil, rest
  if rest:sub(1, 1) == "?" then
    query, frag = rest:match("^%?([^#]*)(.*)$")
  end
  return head, query, frag
end

--- strip_marker(url) -> url without the marker parameter, marker number (or nil).
-- A URL without the marker is returned unchanged.
function M.strip_marker(url)
  if type(url) ~= "string" then
    error("strip_marker: argument 'url' must be a string, got " .. type(url), 2)
  end
  local head, query, frag = split_url(url)
  if not query then
    return url, nil
  end
  local kept, n, found = {}, nil, false
  for part in query:gmatch("[^&]+") do
    local k, v = part:match("^([^=]*)=?(.*)$")
    if k == M.MARKER then
      found = true
      n = tonumber(v) or n or 0
    else
      kept[#kept + 1] = part
    end
  end
  if not found then
    return url, nil
  end
  return head .. (#kept > 0 and ("?" .. table.concat(kept, "&")) or "") .. frag, n
end

--- with_marker(url, n) -> url with "linqwh_rotation=n" (replacing any marker).
function M.with_marker(url, n)
  if type(url) ~= "string" then
    error("with_marker: argument 'url' must be a string, got " .. type(url), 2)
  end
  if type(n) ~= "number" or n < 1 or n % 1 ~= 0 then
    error("with_marker: argument 'n' must be a whole number >= 1", 2)
  end
  local base = M.strip_marker(url)
  local head, query, frag = split_url(base)
  local q = (query and query ~= "") and (query .. "&") or ""
  return head .. "?" .. q .. M.MARKER .. "=" .. string.format("%d", n) .. frag
end

------------------------------------------------------------------------------
-- desired state

local KEYS = {
  target_url = "a string (an https URL)",
  subscribed_events = "a non-empty array of event type strings",
  phone_numbers = "an array of E.164 strings (or absent)",
  is_active = "a boolean (default true)",
}
local KEY_LIST = "target_url, subscribed_events, phone_numbers, is_active"

local function is_list(v)
  return type(v) == "table" and options.is_list(v)
end

local function string_list(what, v, allow_empty, level)
  if not is_list(v) or (not allow_empty and #v == 0) then
    error(what .. " must be " .. (allow_empty and "an array of strings" or "a non-empty array of strings")
      .. ", got " .. (type(v) == "table" and "a table that is not an array" or type(v)), level + 1)
  end
  local out, seen = {}, {}
  for i, s in ipairs(v) do
    if type(s) ~= "string" then
      error(what .. "[" .. i .. "] must be a string, got " .. type(s), level + 1)
    end
    if not seen[s] then
      seen[s] = true
      out[#out + 1] = s
    end
  end
  return out
end

--- check(desired, what, level) -> normalized copy; raises on a structural
-- problem (not an array, unknown key, wrong type, missing field, the
-- rotation marker in a target_url, the same endpoint twice).
-- Normalized entries: { target_url, subscribed_events (no duplicates),
-- phone_numbers (nil for none), is_active (boolean) }.
function M.check(desired, what, level)
  what = what or "desired"
  level = (level or 1) + 1
  if type(desired) ~= "table" or not options.is_list(desired) then
    error(what .. ": the desired state must be an array of subscriptions, got "
      .. (type(desired) == "table" and "a table that is not an array" or type(desired)), level)
  end
  local out, by_url = {}, {}
  for i, d in ipairs(desired) do
    local where = what .. "[" .. i .. "]"
    if type(d) ~= "table" or options.is_list(d) and next(d) ~= nil then
      error(where .. " must be a table (an object), got " .. type(d), level)
    end
    for k in pairs(d) do
      if type(k) ~= "string" or not KEYS[k] then
        error(where .. ": unknown key '" .. tostring(k) .. "' (known: " .. KEY_LIST .. ")", level)
      end
    end
    if type(d.target_url) ~= "string" or d.target_url == "" then
      error(where .. ".target_url must be " .. KEYS.target_url .. ", got " .. type(d.target_url), level)
    end
    local _, n = M.strip_marker(d.target_url)
    if n then
      error(where .. ".target_url must not carry the rotation marker '" .. M.MARKER
        .. "' (it is managed by rotate)", level)
    end
    if by_url[d.target_url] then
      error(where .. ".target_url is the same as desired[" .. by_url[d.target_url]
        .. "].target_url (one subscription per endpoint)", level)
    end
    by_url[d.target_url] = i
    if d.subscribed_events == nil then
      error(where .. ".subscribed_events is required (" .. KEYS.subscribed_events .. ")", level)
    end
    local ev = string_list(where .. ".subscribed_events", d.subscribed_events, false, level)
    local phones
    if d.phone_numbers ~= nil and d.phone_numbers ~= json.null then
      phones = string_list(where .. ".phone_numbers", d.phone_numbers, true, level)
      if #phones == 0 then
        phones = nil
      end
    end
    if d.is_active ~= nil and type(d.is_active) ~= "boolean" then
      error(where .. ".is_active must be " .. KEYS.is_active .. ", got " .. type(d.is_active), level)
    end
    out[i] = { target_url = d.target_url, subscribed_events = ev, phone_numbers = phones,
               is_active = d.is_active ~= false }
  end
  return out
end

local function sorted(list)
  local c = {}
  for i, v in ipairs(list or {}) do
    c[i] = v
  end
  table.sort(c)
  return c
end

local function same_set(a, b)
  return options.same_list(sorted(a), sorted(b))
end

--- Field-by-field differences between a subscription and a desired entry:
-- { field = { from, to } } (empty when they agree).
function M.diff(sub, d)
  local changes = {}
  if not same_set(sub.subscribed_events, d.subscribed_events) then
    changes.subscribed_events = { sorted(sub.subscribed_events), sorted(d.subscribed_events) }
  end
  local have = sub.phone_numbers
  if have == json.null or (type(have) == "table" and #have == 0) then
    have = nil
  end
  if not same_set(have, d.phone_numbers) then
    changes.phone_numbers = { have and sorted(have) or {}, d.phone_numbers and sorted(d.phone_numbers) or {} }
  end
  if (sub.is_active ~= false) ~= d.is_active then
    changes.is_active = { sub.is_active ~= false, d.is_active }
  end
  return changes
end

--- Groups subscriptions by endpoint (target_url without the marker); each
-- group is ordered oldest twin first (by marker, then created_at).
function M.group(list)
  local groups, order = {}, {}
  for _, s in ipairs(list) do
    local base, n = M.strip_marker(s.target_url or "")
    local g = groups[base]
    if not g then
      g = {}
      groups[base] = g
      order[#order + 1] = base
    end
    g[#g + 1] = { sub = s, n = n or 0 }
  end
  for _, g in pairs(groups) do
    table.sort(g, function(a, b)
      if a.n ~= b.n then
        return a.n < b.n
      end
      return tostring(a.sub.created_at) < tostring(b.sub.created_at)
    end)
    for i, e in ipairs(g) do
      g[i] = e.sub
    end
  end
  return groups, order
end

--- plan_from(list, desired) -> plan, computed from a list of existing
-- subscriptions (no API call). See M.plan.
function M.plan_from(list, want)
  local groups, order = M.group(list)
  local plan = { create = {}, update = {}, delete = {}, unchanged = {}, rotating = {} }
  local matched = {}
  for _, d in ipairs(want) do
    local g = groups[d.target_url]
    if not g then
      plan.create[#plan.create + 1] = d
    else
      matched[d.target_url] = true
      -- the newest twin serves the endpoint, unless it is still parked by
      -- an unfinished rotation (apply must not unpark it)
      local pi = #g
      while pi > 1 and parked(g[pi]) do
        pi = pi - 1
      end
      local primary = g[pi]
      for i = 1, #g do
        if i ~= pi then
          plan.rotating[#plan.rotating + 1] = g[i]
        end
      end
      local changes = M.diff(primary, d)
      if next(changes) then
        plan.update[#plan.update + 1] = { sub = primary, changes = changes, desired = d }
      else
        plan.unchanged[#plan.unchanged + 1] = primary
      end
    end
  end
  for _, base in ipairs(order) do
    if not matched[base] then
      for _, s in ipairs(groups[base]) do
        plan.delete[#plan.delete + 1] = s
      end
    end
  end
  return plan
end

--- plan(resource, desired) -> { create = {desired...}, update = {{ sub, changes =
-- { field = { from, to } }, desired }}, delete = {sub...} (what apply deletes with
-- prune = true), unchanged = {sub...}, rotating = {sub...} (older twins of an
-- endpoint whose rotation has not finished: apply leaves them to rotate) }
-- | nil, err. Raises on a malformed desired state.
function M.plan(resource, desired, level)
  level = (level or 1) + 1
  local want = M.check(desired, "webhook_subscriptions:plan: desired", level)
  local list, err = resource:list()
  if not list then
    return nil, err
  end
  return M.plan_from(list, want)
end

local APPLY_SCHEMA = {
  prune = "boolean",
  on_secret = "function",
  secrets_file = "string",
}

local function update_params(changes, d)
  local p = {}
  if changes.subscribed_events then
    p.subscribed_events = d.subscribed_events
  end
  if changes.phone_numbers then
    p.phone_numbers = d.phone_numbers or json.null
  end
  if changes.is_active then
    p.is_active = d.is_active
  end
  return p
end

local function with_done(err, done)
  if type(err) == "table" then
    err.done = done
  end
  return nil, err
end

--- apply(resource, desired, opts) -> done | nil, err
-- opts: prune (default false: never delete), on_secret(sub, secret) and/or
-- secrets_file (PATH): where each new subscription's signing secret goes
-- (one of them is required when something is to be created; the secret is
-- never printed nor kept on the returned objects).
-- done has the plan's shape with the subscriptions as they are afterwards:
-- create = {sub...}, update = {{ sub, changes }}, delete = {sub...}
-- (empty without prune), unchanged, rotating. On an API failure: nil, err
-- with err.done = what was carried out before it (apply again to go on).
function M.apply(resource, desired, opts, level)
  level = (level or 1) + 1
  local what = "webhook_subscriptions:apply"
  local want = M.check(desired, what .. ": desired", level)
  opts = options.check(what, opts, APPLY_SCHEMA, level)
  local list, err = resource:list()
  if not list then
    return nil, err
  end
  local plan = M.plan_from(list, want)
  local done = { create = {}, update = {}, delete = {}, unchanged = plan.unchanged,
                 rotating = plan.rotating }
  local sf = opts.secrets_file and require("linqwebhooks.secrets_file")
  if #plan.create > 0 then
    if not opts.on_secret and not opts.secrets_file then
      return nil, errors.new{ kind = "invalid_request", name = "InvalidRequestError",
        message = what .. ": " .. #plan.create .. " subscription(s) to create, but neither "
          .. "on_secret nor secrets_file was given: their signing secrets would be lost" }
    end
    if sf then -- can we keep the secrets? (before creating anything)
      local ok, serr = sf.update(opts.secrets_file, function() end)
      if not ok then
        return nil, serr
      end
    end
  end
  for _, d in ipairs(plan.create) do
    local params = { target_url = d.target_url, subscribed_events = d.subscribed_events }
    if d.phone_numbers then
      params.phone_numbers = d.phone_numbers
    end
    local sub, cerr = resource:create(params)
    if not sub then
      return with_done(cerr, done)
    end
    local secret = sub.signing_secret
    sub.signing_secret = nil
    if sf then
      local ok, serr = sf.update(opts.secrets_file, function(doc)
        sf.add_secret(doc, d.target_url, secret, sub.id)
      end)
      if not ok then
        return with_done(serr, done)
      end
    end
    if opts.on_secret then
      opts.on_secret(sub, secret)
    end
    if not d.is_active then
      local upd, uerr = sub:update{ is_active = false }
      if not upd then
        return with_done(uerr, done)
      end
    end
    done.create[#done.create + 1] = sub
  end
  for _, u in ipairs(plan.update) do
    local sub, uerr = u.sub:update(update_params(u.changes, u.desired))
    if not sub then
      return with_done(uerr, done)
    end
    done.update[#done.update + 1] = { sub = sub, changes = u.changes }
  end
  if opts.prune then
    for _, s in ipairs(plan.delete) do
      local ok, derr = resource:delete(s.id)
      if not ok and not (type(derr) == "table" and derr.status == 404) then
        return with_done(derr, done)
      end
      if sf then
        sf.update(opts.secrets_file, function(doc)
          for _, ep in pairs(doc.endpoints) do
            for _, e in ipairs(ep.secrets) do
              if e.subscription_id == s.id and not e.expires_at then
                e.expires_at = os.time() + M.OLD_SECRET_GRACE
              end
            end
          end
        end)
      end
      done.delete[#done.delete + 1] = s
    end
  end
  return done
end

------------------------------------------------------------------------------
-- rendering and loading (for linqwh and scripts)

local function list_text(v)
  if type(v) == "table" then
    if #v == 0 then
      return "(none)"
    end
    return table.concat(v, ", ")
  end
  return tostring(v)
end

local FIELD_ORDER = { "subscribed_events", "phone_numbers", "is_active" }

--- format_plan(plan, { prune = false }) -> text: one block per change,
-- Terraform style ("+" create, "~" update, "-" delete, "=" unchanged), and
-- a summary line. Works on a plan and on apply's result. Never shows secrets.
function M.format_plan(plan, opts)
  if type(plan) ~= "table" then
    error("format_plan: argument 'plan' must be a table, got " .. type(plan), 2)
  end
  opts = opts or {}
  local out = {}
  local function add(s)
    out[#out + 1] = s
  end
  for _, d in ipairs(plan.create or {}) do
    add("+ create " .. tostring(d.target_url) .. (d.id and (" (id " .. d.id .. ")") or ""))
    add("    subscribed_events: " .. list_text(sorted(d.subscribed_events)))
    if d.phone_numbers and #d.phone_numbers > 0 then
      add("    phone_numbers: " .. list_text(sorted(d.phone_numbers)))
    end
    if d.is_active == false then
      add("    is_active: false")
    end
  end
  for _, u in ipairs(plan.update or {}) do
    add("~ update " .. tostring(u.sub.target_url) .. " (id " .. tostring(u.sub.id) .. ")")
    for _, f in ipairs(FIELD_ORDER) do
      local c = u.changes[f]
      if c then
        add("    " .. f .. ": " .. list_text(c[1]) .. " -> " .. list_text(c[2]))
      end
    end
  end
  for _, s in ipairs(plan.delete or {}) do
    add("- delete " .. tostring(s.target_url) .. " (id " .. tostring(s.id) .. ")"
      .. ((opts.prune or opts.applied) and "" or "  [only with prune]"))
  end
  for _, s in ipairs(plan.rotating or {}) do
    add("! rotating " .. tostring(s.target_url) .. " (id " .. tostring(s.id)
      .. "): an unfinished rotation; run rotate again to finish it")
  end
  for _, s in ipairs(plan.unchanged or {}) do
    add("= unchanged " .. tostring(s.target_url) .. " (id " .. tostring(s.id) .. ")")
  end
  local ndel = #(plan.delete or {})
  add(string.format("Plan: %d to create, %d to update, %d to delete%s, %d unchanged.",
    #(plan.create or {}), #(plan.update or {}), ndel,
    (ndel > 0 and not opts.prune and not opts.applied) and " (with prune)" or "",
    #(plan.unchanged or {})))
  return table.concat(out, "\n")
end

--- load_file(path) -> desired | nil, err: a JSON file (an array of
-- subscriptions) or a Lua file (".lua", returning that array; run without
-- access to globals).
function M.load_file(path)
  if type(path) ~= "string" then
    error("load_file: argument 'path' must be a string, got " .. type(path), 2)
  end
  local f, oerr = io.open(path, "rb")
  if not f then
    return nil, errors.new{ kind = "io", message = "cannot read " .. path .. ": " .. tostring(oerr) }
  end
  local text = f:read("*a") or ""
  f:close()
  if path:match("%.lua$") then
    local env = {}
    local chunk, lerr
    if rawget(_G, "setfenv") then
      chunk, lerr = loadstring(text, "@" .. path) -- luacheck: ignore
      if chunk then
        setfenv(chunk, env) -- luacheck: ignore
      end
    else
      chunk, lerr = load(text, "@" .. path, "t", env)
    end
    if not chunk then
      return nil, errors.new{ kind = "invalid", message = tostring(lerr) }
    end
    local ok, v = pcall(chunk)
    if not ok then
      return nil, errors.new{ kind = "invalid", message = path .. ": " .. tostring(v) }
    end
    return v
  end
  local v, jerr = json.decode(text)
  if v == nil then
    return nil, errors.new{ kind = "invalid", message = path .. " is not valid JSON: " .. tostring(jerr) }
  end
  return v
end

return M
