--- Signing-secret rotation without downtime: Linq has no "roll secret"
-- endpoint and one subscription per target_url, so rotate creates a twin
-- subscription on the same endpoint, made unique by the marker query
-- parameter "linqwh_rotation=<n>", and retires the old one once the receiver
-- verifies with the new key.
--
--   local new_sub, err = client.webhook_subscriptions:rotate(sub_or_id, {
--     secrets_file = "/etc/app/linq-secrets.json",     -- state + secrets (0600)
--     on_secret = function(new_sub, secret) end,       -- and/or: hand the secret over
--     confirm = function(new_sub) return true end,     -- default: a signed probe POST
--     timeout = 600, poll = 1 })
--
-- Steps (each recorded in the secrets file before the next one starts, so
-- calling rotate again after a crash resumes where it stopped):
--   creating     the twin is about to be created, parked: its line filter is
--                M.PARKING_NUMBER, a number no account sends from, so Linq
--                delivers nothing to it before the receiver knows its key
--   created      twin created; its secret is in the file (then on_secret)
--   handed_over  on_secret returned; waiting for confirm(new_sub)
--   confirmed    the receiver verifies with the new key; the twin gets the
--                old one's events and line filter (both now deliver every
--                event, with the same event_id: the receiver's dedupe store
--                drops the second copy)
--   deactivated  the old subscription no longer delivers
--   done         the old one is deleted; its secret stays valid for `grace`
--                seconds (in-flight deliveries), then drops out of the file
local json = require "linqwebhooks.json"
local errors = require "linqwebhooks.errors"
local options = require "linqwebhooks.options"
local desired = require "linqwebhooks.subscriptions.desired"
local sfile = require "linqwebhooks.secrets_file"
local process = require "linqwebhooks.process"

local M = {}

--- The line filter a twin has until the receiver confirms its key
-- (NANP fictional 555-01xx range: never a real sender).
M.PARKING_NUMBER = desired.PARKING_NUMBER
M.STEPS = { "creating", "created", "handed_over", "confirmed", "deactivated", "done" }
local KNOWN_STEP = {}
for _, name in ipairs(M.STEPS) do
  KNOWN_STEP[name] = true
end

-- The check of a duration option: seconds below 1e7, above 0 (or >= 0).
local function seconds_check(allow_zero)
  local message = allow_zero and "must be a number of seconds >= 0" or "must be a positive number of seconds"
  return function(v)
    if (v > 0 or (allow_zero and v == 0)) and v < 1e7 then
      return true
    end
    return false, message
  end
end

local SCHEMA = {
  on_secret = "function",
  secrets_file = "string",
  confirm = "function",
  timeout = { types = { "number" }, check = seconds_check(false) },
  poll = { types = { "number" }, check = seconds_check(false) },
  grace = { types = { "number" }, check = seconds_check(true) },
  on_step = "function",
}

local function fail(reason, message, extra)
  local e = errors.new{ kind = "rotation", reason = reason, message = message }
  for k, v in pairs(extra or {}) do
    e[k] = v
  end
  return nil, e
end

local function not_found(err)
  return type(err) == "table" and err.status == 404
end

-- The answer of a delete or deactivate, "already gone" (404) counting as done.
local function gone(ok, err)
  if not ok and not not_found(err) then
    return nil, err
  end
  return true
end

--- probe(resource, url, secret) -> status | nil, err: POSTs a signed body
-- that is not a Linq event ({"linqwh_probe": ...}) to url. A linq.webhooks
-- receiver that knows the key answers 400 ("invalid event"), one that does
-- not answers 401; handlers never run.
function M.probe(resource, url, secret)
  local body = assert(json.encode({ linqwh_probe = "rotation" }))
  local signed = require("linqwebhooks.verifier").sign({ secret = secret, body = body,
                                                         scheme = "both" })
  local headers = { ["Content-Type"] = "application/json", ["User-Agent"] = "linqwebhooks-rotation-probe" }
  for k, v in pairs(signed) do
    if type(v) == "string" and k ~= "body" then
      headers[k] = v
    end
  end
  local res, kind, msg = resource.client._transport:request("POST", url, headers, body)
  if not res then
    return nil, tostring(kind) .. ": " .. tostring(msg)
  end
  return res.status
end

--- The default confirm: the probe is answered with 400 (a linq.webhooks
-- receiver: verified, not an event) or a 2xx. 401 (key unknown), 404 (wrong
-- path), 5xx and connection failures are "not yet".
local function probe_confirm(resource, secret_of)
  return function(new_sub)
    local st = M.probe(resource, new_sub.target_url, secret_of())
    return st ~= nil and (st == 400 or (st >= 200 and st < 300))
  end
end

-- State: kept in the secrets file when there is one, else in memory.
local Store = {}
Store.__index = Store

local function new_store(path, base)
  return setmetatable({ path = path, base = base, mem = nil, mem_secret = nil }, Store)
end

-- The endpoint's entry in the file: nil when the file or the entry is
-- missing; nil, err when the file cannot be read.
function Store:endpoint()
  local doc, err = sfile.read(self.path)
  if not doc then
    if err.reason == "missing" then
      return nil
    end
    return nil, err
  end
  return doc.endpoints[self.base]
end

function Store:get()
  if not self.path then
    return self.mem
  end
  local ep, err = self:endpoint()
  if err then
    return nil, err
  end
  return ep and ep.rotation or nil
end

-- Records `rot` (nil clears it) and runs fn(doc) in the same atomic write.
function Store:set(rot, fn)
  if not self.path then
    self.mem = rot
    if fn then
      local doc = sfile.empty()
      fn(doc)
      local ep = doc.endpoints[self.base]
      if ep and ep.secrets[1] then
        self.mem_secret = ep.secrets[1].secret
      end
    end
    return true
  end
  local ok, err = sfile.update(self.path, function(doc)
    local ep = sfile.endpoint(doc, self.base)
    ep.rotation = rot
    if fn then
      fn(doc)
    end
  end)
  if not ok then
    return nil, err
  end
  return true
end

function Store:secret_of(sub_id)
  if not self.path then
    return self.mem_secret
  end
  local ep = self:endpoint()
  for _, s in ipairs(ep and ep.secrets or {}) do
    if s.subscription_id == sub_id then
      return s.secret
    end
  end
  return nil
end

-- Finds which endpoint a rotation is about: from the object, from a
-- rotation record naming the id, or by retrieving the id.
local function resolve(resource, sub_or_id, path)
  if type(sub_or_id) == "table" then -- id and target_url checked by check_args
    return (desired.strip_marker(sub_or_id.target_url)), sub_or_id.id
  end
  if path then
    local doc = sfile.read(path)
    for url, ep in pairs(doc and doc.endpoints or {}) do
      local r = ep.rotation
      if r and (r.old_id == sub_or_id or r.new_id == sub_or_id) then
        return url, r.old_id
      end
    end
  end
  local sub, err = resource:retrieve(sub_or_id)
  if not sub then
    return nil, nil, err
  end
  return (desired.strip_marker(sub.target_url)), sub.id
end

local function find(list, pred)
  for _, s in ipairs(list) do
    if pred(s) then
      return s
    end
  end
  return nil
end

local STEP_TEXT = {
  creating = "creating the twin %s (parked on line " .. M.PARKING_NUMBER .. ")",
  created = "twin %s created; its secret is in the secrets file",
  handed_over = "new secret handed over; waiting until the receiver verifies with it",
  confirmed = "receiver confirmed the new key; twin %s now gets every event",
  deactivated = "old subscription %s deactivated",
  done = "old subscription %s deleted; %s alone serves the endpoint",
}

--- format_step(step, info) -> one line describing a step (for on_step in
-- tools such as linqwh; never shows a secret).
function M.format_step(step, info)
  info = info or {}
  local fmt = STEP_TEXT[step] or (tostring(step) .. " %s")
  local a = (step == "creating") and info.target_url
    or ((step == "created" or step == "confirmed") and info.new_id)
    or info.old_id
  return string.format("rotate: %-11s " .. fmt, step, tostring(a), tostring(info.new_id))
end

-- The steps below share `c`, the state of one run: resource, opts, timeout,
-- poll, grace, sleep, base (the endpoint URL), store, group (the endpoint's
-- subscriptions when the run started), rot (the recorded state), new_sub
-- (the twin). Each step returns true or nil, err.

local WHAT = "webhook_subscriptions:rotate"
local RESTART = {} -- fetch_twin's answer when the twin is gone: run again

local function by_id(group, id)
  return find(group, function(s) return s.id == id end)
end

-- The marker number after the highest one among the endpoint's subscriptions.
local function next_marker(group)
  local maxn = 0
  for _, s in ipairs(group) do
    local _, n = desired.strip_marker(s.target_url)
    maxn = math.max(maxn, n or 0)
  end
  return maxn + 1
end

-- Moves the rotation to step `name`: records it, with fn(doc) in the same
-- write ("done" clears the record), then tells on_step.
local function advance(c, name, fn)
  local rot = c.rot
  rot.step = name
  local ok, err = c.store:set(name ~= "done" and rot or nil, fn)
  if not ok then
    return nil, err
  end
  if c.opts.on_step then
    c.opts.on_step(name, { old_id = rot.old_id, new_id = rot.new_id, target_url = rot.target_url })
  end
  return true
end

-- (no record) -> creating: the twin keeps the old one's settings; its URL
-- differs by the next marker.
local function plan_twin(c, old_id)
  local old = by_id(c.group, old_id)
  if not old then
    return fail("not_found", WHAT .. ": subscription " .. tostring(old_id) .. " not found")
  end
  c.rot = { step = "creating", old_id = old.id,
            target_url = desired.with_marker(c.base, next_marker(c.group)),
            subscribed_events = json.array(old.subscribed_events or {}),
            phone_numbers = old.phone_numbers and json.array(old.phone_numbers) or nil,
            is_active = old.is_active ~= false, started_at = os.time() }
  return advance(c, "creating")
end

-- creating -> created: a twin created before a crash, whose secret was
-- never recorded, is useless: remove it, create the twin again (parked),
-- and record its secret.
local function create_parked_twin(c)
  local rot, resource = c.rot, c.resource
  local stray = find(c.group, function(s) return s.target_url == rot.target_url end)
  if stray then
    local ok, err = gone(resource:delete(stray.id))
    if not ok then
      return nil, err
    end
  end
  local created, err = resource:create{ target_url = rot.target_url,
                                        subscribed_events = rot.subscribed_events,
                                        phone_numbers = { M.PARKING_NUMBER } }
  if not created then
    return nil, err
  end
  local secret = created.signing_secret
  created.signing_secret = nil
  c.new_sub, rot.new_id = created, created.id
  return advance(c, "created", function(doc)
    sfile.add_secret(doc, c.base, secret, created.id)
  end)
end

-- Any later step: the twin as the API has it. One deleted by hand before
-- the receiver confirmed its key means starting over (nil, RESTART).
local function fetch_twin(c)
  if c.new_sub then
    return true
  end
  local rot = c.rot
  local sub, err = c.resource:retrieve(rot.new_id)
  if sub then
    c.new_sub = sub
    return true
  end
  if not_found(err) then
    -- the twin was deleted by hand: start over. After `deactivated` the old
    -- subscription is switched on again first, so that it serves the
    -- endpoint while the new twin is made.
    if rot.step == "deactivated" then
      local ok, uerr = c.resource:update(rot.old_id, { is_active = true })
      if not ok then
        return nil, uerr
      end
    end
    rot.step, rot.new_id = "creating", nil
    local ok, serr = c.store:set(rot)
    if not ok then
      return nil, serr
    end
    return nil, RESTART
  end
  return nil, err
end

-- created -> handed_over: on_secret gets the twin's secret.
local function hand_over_secret(c)
  local secret = c.store:secret_of(c.rot.new_id)
  if not secret then
    return fail("lost_secret", WHAT .. ": the new subscription's secret is not in the secrets file")
  end
  if c.opts.on_secret then
    c.opts.on_secret(c.new_sub, secret)
  end
  return advance(c, "handed_over")
end

-- handed_over: polls confirm(new_sub) until it returns true or the timeout.
local function await_confirm(c)
  local rot = c.rot
  if not c.opts.confirm and not c.store:secret_of(rot.new_id) then
    -- the default confirm probes with the twin's secret
    return fail("lost_secret", WHAT .. ": the new subscription's secret is not in the secrets file")
  end
  local confirm = c.opts.confirm or probe_confirm(c.resource, function()
    return c.store:secret_of(rot.new_id)
  end)
  local function now()
    return process.now_ns() / 1e9
  end
  local deadline = now() + c.timeout
  while not confirm(c.new_sub) do
    if now() >= deadline then
      return fail("timeout", WHAT .. ": the receiver did not confirm the new key within "
        .. c.timeout .. " s; the old subscription still serves the endpoint (rotate again to keep waiting)",
        { step = "handed_over" })
    end
    c.sleep(c.poll)
  end
  return true
end

-- handed_over -> confirmed: the twin gets the old one's line filter (and
-- state): from now on both subscriptions deliver every event.
local function unpark_twin(c)
  local rot = c.rot
  local params = { subscribed_events = rot.subscribed_events,
                   phone_numbers = rot.phone_numbers or json.null }
  if not rot.is_active then
    params.is_active = false
  end
  local upd, err = c.new_sub:update(params)
  if not upd then
    return nil, err
  end
  return advance(c, "confirmed")
end

-- confirmed -> deactivated: the old subscription stops delivering.
local function deactivate_old(c)
  local old = by_id(c.group, c.rot.old_id)
  if old and old.is_active ~= false then
    local ok, err = gone(old:deactivate())
    if not ok then
      return nil, err
    end
  end
  return advance(c, "deactivated")
end

-- fn(doc) for the last write: the endpoint's secrets other than the twin's
-- expire after `grace` seconds; expired ones drop out.
local function expire_old_secrets(base, new_id, grace)
  local now = os.time()
  return function(doc)
    local ep = sfile.endpoint(doc, base)
    local kept = {}
    for _, s in ipairs(ep.secrets) do
      if s.subscription_id ~= new_id and not s.expires_at then
        s.expires_at = now + grace
      end
      if not s.expires_at or s.expires_at > now then
        kept[#kept + 1] = s
      end
    end
    ep.secrets = kept
  end
end

-- deactivated -> done: exactly one subscription serves the endpoint
-- afterwards: the old one and any other leftover twin go.
local function delete_old(c)
  local new_id = c.rot.new_id
  for _, s in ipairs(c.group) do
    if s.id ~= new_id then
      local ok, err = gone(c.resource:delete(s.id))
      if not ok then
        return nil, err
      end
    end
  end
  return advance(c, "done", c.opts.secrets_file and expire_old_secrets(c.base, new_id, c.grace) or nil)
end

-- What runs, in order, when the recorded step is `at` (no `at`: always).
-- A step that records the next one lets the following entries run too.
local SEQUENCE = {
  { at = "creating", run = create_parked_twin },
  { run = fetch_twin },
  { at = "created", run = hand_over_secret },
  { at = "handed_over", run = await_confirm },
  { at = "handed_over", run = unpark_twin },
  { at = "confirmed", run = deactivate_old },
  { at = "deactivated", run = delete_old },
}

-- Sets up a run: which endpoint, the recorded state (recording a new
-- rotation when there is none), the endpoint's subscriptions.
local function start(resource, sub_or_id, opts)
  local base, old_id, rerr = resolve(resource, sub_or_id, opts.secrets_file)
  if not base then
    return nil, rerr
  end
  local store = new_store(opts.secrets_file, base)
  local rot, gerr = store:get()
  if gerr then
    return nil, gerr
  end
  if rot and not KNOWN_STEP[rot.step] then
    return fail("bad_state", WHAT .. ": the secrets file records an unknown rotation step '"
      .. tostring(rot.step) .. "' for " .. base .. "; fix or remove its \"rotation\" entry")
  end
  local list, lerr = resource:list()
  if not list then
    return nil, lerr
  end
  local c = { resource = resource, opts = opts, base = base, store = store, rot = rot,
              group = desired.group(list)[base] or {},
              timeout = opts.timeout or 600, poll = opts.poll or 1,
              grace = opts.grace or desired.OLD_SECRET_GRACE, sleep = resource.client._sleep }
  if not rot then
    local ok, err = plan_twin(c, old_id)
    if not ok then
      return nil, err
    end
  end
  return c
end

-- One run from the recorded step to the end -> new_sub | nil, err (RESTART).
local function run(resource, sub_or_id, opts)
  local c, err = start(resource, sub_or_id, opts)
  if not c then
    return nil, err
  end
  for _, entry in ipairs(SEQUENCE) do
    if entry.at == nil or entry.at == c.rot.step then
      local ok, serr = entry.run(c)
      if not ok then
        return nil, serr
      end
    end
  end
  return c.new_sub
end

-- Raises on bad arguments (at `level`); returns the checked options.
local function check_args(sub_or_id, opts, level)
  level = level + 1
  if type(sub_or_id) ~= "string" and type(sub_or_id) ~= "table" then
    error(WHAT .. ": argument 'sub_or_id' must be a subscription or an id string, got "
      .. type(sub_or_id), level)
  end
  if sub_or_id == "" then
    error(WHAT .. ": argument 'sub_or_id' must not be empty", level)
  end
  if type(sub_or_id) == "table" and (type(sub_or_id.id) ~= "string" or type(sub_or_id.target_url) ~= "string") then
    error(WHAT .. ": argument 'sub_or_id' must be a subscription (with id and target_url) or an id string",
      level)
  end
  opts = options.check(WHAT, opts, SCHEMA, level)
  if not opts.secrets_file and not opts.on_secret then
    error(WHAT .. ": give secrets_file and/or on_secret: the new signing secret is shown only once",
      level)
  end
  return opts
end

--- rotate(resource, sub_or_id, opts) -> new_sub | nil, err. See the module
-- comment; opts: secrets_file, on_secret(new_sub, secret) (at least one),
-- confirm(new_sub) -> bool (default: the signed probe), timeout = 600 and
-- poll = 1 (seconds, for confirm), grace = 300 (seconds the old secret stays
-- in the file after the old subscription is deleted), on_step(step, info)
-- (progress: called once each step is recorded; info = { old_id, new_id,
-- target_url }). A raising callback leaves the recorded state behind:
-- rotate again resumes (on_secret may then be called again for the same
-- secret). err.reason: "timeout" (confirm never returned true: the old
-- subscription still serves the endpoint), "not_found", or an API error.
function M.rotate(resource, sub_or_id, opts, level)
  opts = check_args(sub_or_id, opts, (level or 1) + 1)
  while true do
    local new_sub, err = run(resource, sub_or_id, opts)
    if new_sub then
      return new_sub
    elseif err ~= RESTART then
      return nil, err
    end
  end
end

return M
