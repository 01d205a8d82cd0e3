--- Signing secrets at rest: one small JSON file, owner-only (mode 0600),
-- replaced atomically (temp file in the same directory + rename), that
-- `linq.webhooks{ secrets_file = PATH }` reads and re-reads when it changes,
-- and that subscriptions:apply / :rotate write (their crash-recovery state
-- lives in it too).
--
--   {
--     "version": 1,
--     "endpoints": {
--       "https://app.example.com/linq": {                -- target_url without the rotation marker
--         "secrets": [                                   -- newest first
--           { "secret": "whsec_...", "subscription_id": "...", "added_at": 1764600000 },
--           { "secret": "whsec_...", "subscription_id": "...", "added_at": 1764500000,
--             "expires_at": 1764600300 }                 -- optional: unix seconds
--         ],
--         "rotation": { "step": "handed_over", ... }    -- only while a rotation runs
--       }
--     }
--   }
--
-- A file that group or others may read or write is refused (the error names
-- the mode and the fix, never a secret). The mode and change checks use
-- core.file_info (one stat(2) call); writers use linqwebhooks.process.
local json = require "linqwebhooks.json"
local errors = require "linqwebhooks.errors"
local options = require "linqwebhooks.options"
local private_file = require "linqwebhooks.private_file"

local M = {}

M.VERSION = 1
M.CHECK_INTERVAL = 1 -- seconds between two looks at the file (mtime, size, inode)
-- The most secrets one verifier holds (the C keyring's LINQWH_MAX_KEYS).
M.MAX_SECRETS = 16

local file_info = require("linqwebhooks.core").file_info

-- getpid: only writers (apply, rotate) need it.
local function getpid()
  return require("linqwebhooks.process").getpid()
end

local function fail(reason, message)
  return nil, errors.new{ kind = "secrets_file", reason = reason, message = message }
end

--- A new, empty document.
function M.empty()
  return { version = M.VERSION, endpoints = {} }
end

-- Checks the structure of a decoded document; returns it or nil, message.
local function check_doc(doc)
  if type(doc) ~= "table" or json.is_array(doc) then
    return nil, "the top level must be a JSON object"
  end
  if doc.version ~= M.VERSION then
    return nil, "unsupported version " .. tostring(doc.version) .. " (this library reads version "
      .. M.VERSION .. ")"
  end
  if doc.endpoints == nil then
    doc.endpoints = {}
  end
  if type(doc.endpoints) ~= "table" or (json.is_array(doc.endpoints) and #doc.endpoints > 0) then
    return nil, "'endpoints' must be an object keyed by endpoint URL"
  end
  for url, ep in pairs(doc.endpoints) do
    if type(url) ~= "string" or type(ep) ~= "table" then
      return nil, "endpoints entries must be objects keyed by URL"
    end
    if ep.secrets == nil then
      ep.secrets = {}
    end
    if type(ep.secrets) ~= "table" then
      return nil, "endpoints['" .. url:sub(1, 200) .. "'].secrets must be an array"
    end
    for i, s in ipairs(ep.secrets) do
      if type(s) ~= "table" or type(s.secret) ~= "string" or s.secret == "" then
        return nil, "endpoints['" .. url:sub(1, 200) .. "'].secrets[" .. i
          .. "] must be an object with a non-empty 'secret' string"
      end
      if s.expires_at ~= nil and type(s.expires_at) ~= "number" then
        return nil, "endpoints['" .. url:sub(1, 200) .. "'].secrets[" .. i
          .. "].expires_at must be a number (unix seconds)"
      end
    end
    if ep.rotation ~= nil and (type(ep.rotation) ~= "table" or json.is_array(ep.rotation)) then
      return nil, "endpoints['" .. url:sub(1, 200) .. "'].rotation must be an object"
    end
  end
  return doc
end

--- The attributes the change check compares, or nil, err. Refuses a file
-- group or others can access.
local function stat(path)
  local attr, msg = file_info(path)
  if not attr then
    return nil, msg
  end
  if attr.type ~= "file" then
    return nil, "not a regular file", "bad_mode"
  end
  if attr.mode % 64 ~= 0 then -- any of the group/other bits (0077)
    return nil, string.format("mode %03o lets group or others access it (signing secrets:"
      .. " chmod 600 it)", attr.mode), "bad_mode"
  end
  return attr
end

--- M.read(path) -> doc | nil, err. err.reason: "missing" (no such file),
-- "bad_mode" (group/world accessible), "invalid" (not a secrets file), "io".
function M.read(path)
  if type(path) ~= "string" then
    error("secrets_file.read: argument 'path' must be a string, got " .. type(path), 2)
  end
  local attr, msg, why = stat(path)
  if not attr then
    if why then
      return fail(why, "secrets file " .. path .. ": " .. msg)
    end
    return fail("missing", "secrets file " .. path .. ": " .. tostring(msg))
  end
  local f, err = io.open(path, "rb")
  if not f then
    return fail("io", "secrets file " .. path .. ": " .. tostring(err))
  end
  local text = f:read("*a") or ""
  f:close()
  local doc, jerr = json.decode(text)
  if doc == nil then
    -- the decoder's message names a byte offset, never the content
    return fail("invalid", "secrets file " .. path .. " is not valid JSON: " .. tostring(jerr))
  end
  local good, cmsg = check_doc(doc)
  if not good then
    return fail("invalid", "secrets file " .. path .. ": " .. cmsg)
  end
  return doc, attr
end

local function encodable(doc)
  -- empty containers: endpoints is an object, secrets arrays
  local eps = {}
  for url, ep in pairs(doc.endpoints or {}) do
    local e = {}
    for k, v in pairs(ep) do
      e[k] = v
    end
    local list = {}
    for i, s in ipairs(ep.secrets or {}) do
      list[i] = s
    end
    e.secrets = json.array(list)
    eps[url] = e
  end
  return { version = M.VERSION, endpoints = eps }
end

local seq = 0

--- M.write(path, doc) -> true | nil, err: writes a temp file next to `path`
-- with mode 0600 (set before any secret is written), then renames it over
-- `path`, so a reader sees the old or the new file, never a mix.
function M.write(path, doc)
  if type(path) ~= "string" then
    error("secrets_file.write: argument 'path' must be a string, got " .. type(path), 2)
  end
  if type(doc) ~= "table" then
    error("secrets_file.write: argument 'doc' must be a table, got " .. type(doc), 2)
  end
  local text, jerr = json.encode(encodable(doc))
  if not text then
    return fail("invalid", "cannot encode the secrets file: " .. tostring(jerr))
  end
  seq = seq + 1
  -- unique per process and call: concurrent writers never share a temp file
  local tmp = string.format("%s.tmp%d.%d.%d", path, getpid(), os.time(), seq)
  local ok, stage, err = private_file.write(path, text, tmp)
  if not ok then
    return fail("io", (stage == "chmod" and "cannot make the secrets file private (chmod 0600): "
      or stage == "rename" and "cannot replace the secrets file: "
      or "cannot write the secrets file: ") .. tostring(err))
  end
  return true
end

--- M.update(path, fn) -> doc | nil, err: reads the file (a missing one is
-- an empty document), lets fn(doc) change it in place, writes it back.
-- fn may return nil, err to abort without writing.
function M.update(path, fn)
  local doc, err = M.read(path)
  if not doc then
    if err.reason ~= "missing" then
      return nil, err
    end
    doc = M.empty()
  end
  local ok, ferr = fn(doc)
  if ok == nil and ferr ~= nil then
    return nil, ferr
  end
  local wok, werr = M.write(path, doc)
  if not wok then
    return nil, werr
  end
  return doc
end

--- The entry of an endpoint (created when missing).
function M.endpoint(doc, url)
  local ep = doc.endpoints[url]
  if not ep then
    ep = { secrets = {} }
    doc.endpoints[url] = ep
  end
  return ep
end

--- Adds a secret in front of an endpoint's list (newest first); the same
-- secret is never listed twice.
function M.add_secret(doc, url, secret, subscription_id, now)
  local ep = M.endpoint(doc, url)
  local list = { { secret = secret, subscription_id = subscription_id, added_at = now or os.time() } }
  for _, s in ipairs(ep.secrets) do
    if s.secret ~= secret then
      list[#list + 1] = s
    end
  end
  ep.secrets = list
  return ep
end

--- The secrets valid at `now` (not past expires_at), newest first: of one
-- endpoint, or of every endpoint when `url` is nil (then ordered by
-- added_at, newest first). No duplicates.
function M.secrets(doc, url, now)
  now = now or os.time()
  local entries = {}
  local function take(ep)
    for i, s in ipairs(ep.secrets or {}) do
      if not s.expires_at or s.expires_at > now then
        entries[#entries + 1] = { s = s, pos = i }
      end
    end
  end
  if url then
    if doc.endpoints[url] then
      take(doc.endpoints[url])
    end
  else
    for _, ep in pairs(doc.endpoints) do
      take(ep)
    end
    table.sort(entries, function(a, b)
      local ta, tb = tonumber(a.s.added_at) or 0, tonumber(b.s.added_at) or 0
      if ta ~= tb then
        return ta > tb
      end
      if a.pos ~= b.pos then
        return a.pos < b.pos
      end
      return a.s.secret < b.s.secret -- deterministic
    end)
  end
  local out, seen = {}, {}
  for _, e in ipairs(entries) do
    if not seen[e.s.secret] then
      seen[e.s.secret] = true
      out[#out + 1] = e.s.secret
    end
  end
  return out
end

------------------------------------------------------------------------------
-- A verifier that follows the file

local same = options.same_list

local Reloading = {}

local function build(self, level)
  local doc, err = M.read(self._path)
  if not doc then
    return nil, err
  end
  local list = M.secrets(doc, self._endpoint, os.time())
  if #list == 0 then
    return fail("no_secrets", "secrets file " .. self._path .. " has no valid secret"
      .. (self._endpoint and (" for endpoint " .. self._endpoint) or ""))
  end
  if #list > M.MAX_SECRETS then
    -- never a silent cut: dropping the oldest secrets would drop the only
    -- secret of the endpoint subscribed longest ago
    local neps = 0
    for _ in pairs(doc.endpoints) do
      neps = neps + 1
    end
    if self._endpoint then
      return fail("too_many_secrets", "secrets file " .. self._path .. " lists " .. #list
        .. " valid secrets for endpoint " .. self._endpoint .. "; a verifier holds at most "
        .. M.MAX_SECRETS .. " (give the older ones an expires_at, or remove them)")
    end
    return fail("too_many_secrets", "secrets file " .. self._path .. " lists " .. #list
      .. " valid secrets across its " .. neps .. " endpoints; a verifier holds at most "
      .. M.MAX_SECRETS .. ": give option 'endpoint' (one dispatcher per endpoint URL) to load"
      .. " only that endpoint's secrets")
  end
  self._doc = doc
  if self._inner and same(list, self._list) then
    return true
  end
  local vopts = {}
  for k, v in pairs(self._vopts) do
    vopts[k] = v
  end
  vopts.secrets = list
  self._inner = require("linqwebhooks.verifier").new(vopts, level + 1, self._what)
  self._list = list
  return true
end

-- What the change check compares: inode, size, mtime and mode.
local function signature(path)
  local a = file_info(path)
  return a and string.format("%.0f:%.0f:%.9f:%d", a.ino, a.size, a.mtime, a.mode) or "missing"
end

-- Looks at the file at most once per CHECK_INTERVAL; rebuilds the inner
-- verifier when it changed or a secret expired. A file that became
-- unreadable, public, empty or lists more than MAX_SECRETS secrets keeps the
-- last good secrets (and is reported through `on_error` once per change of
-- the file and of the error, not at every look).
local function refresh(self)
  local now = os.time()
  if now - self._checked < M.CHECK_INTERVAL then
    return
  end
  self._checked = now
  local sig = signature(self._path)
  local expired = self._next_expiry and now >= self._next_expiry
  if sig == self._sig and not expired then
    return
  end
  self._sig = sig
  local pok, ok, err = pcall(build, self, 1)
  if not pok then -- the verifier refused a secret (named by position only)
    ok, err = nil, errors.new{ kind = "secrets_file", reason = "invalid", message = tostring(ok) }
  end
  if not ok then
    self.last_error = err
    local what = sig .. "\0" .. tostring(err.message)
    if self._on_error and self._reported ~= what then
      self._reported = what
      pcall(self._on_error, err)
    end
    return
  end
  self._reported = nil
  self.last_error = nil
  self.reloads = self.reloads + 1
  -- the earliest expiry still ahead
  local nxt
  for _, ep in pairs(self._doc.endpoints) do
    for _, s in ipairs(ep.secrets) do
      if s.expires_at and s.expires_at > now and (not nxt or s.expires_at < nxt) then
        nxt = s.expires_at
      end
    end
  end
  self._next_expiry = nxt
end

Reloading.__index = function(self, k)
  local cached = rawget(Reloading, k)
  if cached then
    return cached
  end
  -- forward methods of the current verifier, refreshing first
  local inner = rawget(self, "_inner")
  if inner == nil or type(k) ~= "string" or k:sub(1, 1) == "_" then
    return nil
  end
  local v = inner[k]
  if type(v) == "function" then
    return function(_, ...)
      refresh(self)
      local cur = rawget(self, "_inner")
      return cur[k](cur, ...)
    end
  end
  return v
end
Reloading.__tostring = function(self)
  return "linqwebhooks.verifier (secrets_file, " .. #self._list .. " secret(s))"
end

--- r:verify(body, headers): the verifier's verify with the current secrets.
function Reloading.verify(self, body, headers)
  refresh(self)
  local inner = self._inner
  return inner.verify(inner, body, headers)
end

--- r:current() -> the verifier built from the file's current secrets.
function Reloading.current(self)
  refresh(self)
  return self._inner
end

--- r:secret_count() -> how many secrets the verifier currently accepts.
function Reloading.secret_count(self)
  refresh(self)
  return #self._list
end

--- r:reload() -> true | nil, err: reads the file now.
function Reloading.reload(self)
  self._checked = -math.huge
  self._sig = nil
  refresh(self)
  if self.last_error then
    return nil, self.last_error
  end
  return true
end

--- M.verifier(opts, vopts, level, what) -> a verifier that re-reads the
-- file. opts: secrets_file (required), endpoint (optional: only that
-- endpoint's secrets; default every endpoint's), on_error (optional
-- fn(err) for a file that stops being usable). vopts: the linq.verifier
-- options other than the secrets. Raises when the file is unusable at start.
function M.verifier(opts, vopts, level, what)
  level = (level or 1) + 1
  what = what or "linq.webhooks"
  if opts.secrets_file == nil then
    error(what .. ": option 'endpoint' needs option 'secrets_file'", level)
  end
  if vopts.secret ~= nil or vopts.secrets ~= nil then
    error(what .. ": give 'secrets_file' or 'secret'/'secrets', not both", level)
  end
  if opts.endpoint ~= nil and opts.endpoint == "" then
    error(what .. ": option 'endpoint' must be a non-empty URL", level)
  end
  local endpoint = opts.endpoint
  if endpoint then
    endpoint = require("linqwebhooks.subscriptions.desired").strip_marker(endpoint)
  end
  local self = setmetatable({
    _path = opts.secrets_file, _endpoint = endpoint, _vopts = vopts, _what = what,
    _checked = os.time(), _list = {}, _on_error = opts.on_error, reloads = 0,
  }, Reloading)
  local built, err = build(self, level)
  if not built then
    error(what .. ": option 'secrets_file': " .. tostring(err.message), level)
  end
  self._sig = signature(self._path)
  local nxt
  for _, ep in pairs(self._doc.endpoints) do
    for _, s in ipairs(ep.secrets) do
      if s.expires_at and (not nxt or s.expires_at < nxt) then
        nxt = s.expires_at
      end
    end
  end
  self._next_expiry = nxt
  return self
end

M.SCHEMA = { secrets_file = "string", endpoint = "string" }

--- M.is_reloading(v) -> true when v is a verifier made by M.verifier.
function M.is_reloading(v)
  return getmetatable(v) == Reloading
end

-- the options type check, for callers outside linq.webhooks
M.check = function(what, opts, level)
  return options.check(what, opts, M.SCHEMA, (level or 1) + 1)
end

return M
