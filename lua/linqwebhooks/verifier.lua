--- Verification of incoming Linq deliveries (both signature schemes), the
-- streaming form for large bodies, and signing for tests and emulators.
-- The C core does the parsing, HMAC and comparison; this module holds policy.
local core = require "linqwebhooks.core"
local errors = require "linqwebhooks.errors"
local options = require "linqwebhooks.options"
local event = require "linqwebhooks.event"
local hdrs = require "linqwebhooks.headers"
local fast = require "linqwebhooks.ffi"

local M = {}

--- Which binding new verifiers use: the FFI one (linqwebhooks.ffi) under
-- LuaJIT when it is available, else the classic Lua C-API binding. Specs
-- set it to false to run the classic path under LuaJIT too (as does
-- LINQWH_NO_FFI=1 in the environment, for the whole process).
M.use_ffi = fast.available

local function backend()
  if M.use_ffi and fast.available then
    return fast
  end
  return core
end

local Verifier = {}
Verifier.__index = Verifier
Verifier.__tostring = function(v)
  if v._closed then
    return "linqwebhooks.verifier (closed)"
  end
  return "linqwebhooks.verifier (" .. v._nsecrets .. " secret(s), scheme " .. v._scheme .. ")"
end
-- hide internals from casual inspection of the object
Verifier.__metatable = "linqwebhooks.verifier"

local DEFAULT_TOLERANCE = 300
local SCHEME_NUM = { auto = 0, standard = 1, legacy = 2 }

local function secret_list(what, opts, level)
  level = level + 1
  if opts.secret ~= nil and opts.secrets ~= nil then
    error(what .. ": give 'secret' or 'secrets', not both", level)
  end
  local list
  if opts.secret ~= nil then
    list = { opts.secret }
  elseif opts.secrets ~= nil then
    list = {}
    for i, s in ipairs(opts.secrets) do
      if type(s) ~= "string" then
        error(what .. ": option 'secrets' entry " .. i .. " must be a string, got " .. type(s), level)
      end
      list[i] = s
    end
    if #list == 0 then
      error(what .. ": option 'secrets' must be a non-empty array of strings", level)
    end
  else
    error(what .. ": option 'secret' (or 'secrets') is required", level)
  end
  return list
end

--- Builds a keyring from a list of secrets; raises naming the bad one
-- (by position, never by content).
local function keyring(what, list, level, be)
  local kr, msg = (be or backend()).keyring(list)
  if not kr then
    error(what .. ": " .. msg, level + 1)
  end
  return kr
end

local check_tolerance = options.number{ min = 0, integer = true, unit = "seconds", allow = false }

M.SCHEMA = {
  secret = "string",
  secrets = "table",
  tolerance = { types = { "number", "boolean" }, check = check_tolerance },
  scheme = { types = { "string" }, enum = { "auto", "standard", "legacy" } },
  clock = "function",
}

--- linq.verifier{ secret | secrets, tolerance = 300 | false, scheme = "auto", clock = fn }
-- `what` names the public function in error messages (default "linq.verifier").
function M.new(opts, level, what)
  level = (level or 1) + 1
  what = what or "linq.verifier"
  if type(opts) ~= "table" then
    error(what .. ": options table expected, got " .. type(opts), level)
  end
  options.check(what, opts, M.SCHEMA, level)
  local list = secret_list(what, opts, level)
  local tol = opts.tolerance
  if tol == nil then
    tol = DEFAULT_TOLERANCE
  elseif tol == false then
    tol = -1
  end
  local be = backend()
  local kr = keyring(what, list, level, be)
  local obj = setmetatable({
    _kr = kr,
    -- the hot path: one C call per verification (through the FFI under LuaJIT);
    -- the classic binding normalises header objects itself (hdrs.normalize)
    verify = be.bind_verify(kr, SCHEME_NUM[opts.scheme or "auto"], tol, opts.clock, errors.Error,
                            hdrs.normalize),
    _nsecrets = #list,
    _scheme = opts.scheme or "auto",
    _scheme_n = SCHEME_NUM[opts.scheme or "auto"],
    _tolerance = tol,
    _clock = opts.clock or os.time,
  }, Verifier)
  if be ~= core then
    obj.verify = M.accept_header_objects(obj.verify)
  end
  return obj
end

--- Wraps a verify(self, body, headers) function so that `headers` may also
-- be a header object with :get(name) (lua-http; see linqwebhooks.headers).
-- Used for the FFI binding only: the classic binding's bound C verify takes
-- the normaliser (hdrs.normalize) and calls it itself for non-plain tables.
-- The argument checks are repeated here so that errors still point at the
-- caller's line (a C function reports the position of its Lua caller).
local function bad_arg(name, what, v)
  error("verifier:verify: argument '" .. name .. "' must be " .. what .. ", got " .. type(v), 3)
end

function M.accept_header_objects(verify)
  return function(self, body, headers)
    if type(body) ~= "string" then
      bad_arg("body", "a string (the raw request body)", body)
    end
    if type(headers) ~= "table" or getmetatable(headers) ~= nil then
      headers = hdrs.normalize(headers)
      if type(headers) ~= "table" then
        bad_arg("headers", "a table", headers)
      end
    end
    if rawget(self, "_closed") then
      error("verifier:verify: the verifier is closed", 2)
    end
    return verify(self, body, headers)
  end
end

local function check_headers(what, headers)
  headers = hdrs.normalize(headers)
  if type(headers) ~= "table" then
    error(what .. ": argument 'headers' must be a table, got " .. type(headers), 3)
  end
  return headers
end

-- The C core returns the info table itself, or nil, reason, detail.
local function result(info, reason, detail, skew)
  if info then
    return info
  end
  local err = errors.verification(reason, detail)
  err.skew = skew -- this clock minus the timestamp (authentic deliveries only)
  return nil, err
end

local function bad_clock(t)
  error("linq.verifier: clock must return a number, got " .. type(t), 3)
end

--- v:verify(body, headers) -> info | nil, err
-- info = { scheme = "standard"|"legacy", key_index = n, id = webhook-id or nil, timestamp = n }
-- The method is a C closure bound to the keyring and policy at construction
-- (set on the object in M.new); this is its documentation.

local function now(self)
  local t = self._clock()
  if type(t) ~= "number" then
    bad_clock(t)
  end
  return t
end

--- v:verify_file(path, headers) -> info | nil, err
-- Verifies a body stored in a file (e.g. one nginx spilled to disk), reading
-- it in chunks.
function Verifier:verify_file(path, headers)
  if type(path) ~= "string" then
    error("verifier:verify_file: argument 'path' must be a string, got " .. type(path), 2)
  end
  headers = check_headers("verifier:verify_file", headers)
  local info, reason, detail, skew = self._kr:verify_file(path, headers, self._scheme_n, now(self),
    self._tolerance)
  if reason == "io_error" then
    return nil, errors.new({ kind = "io", reason = "io_error", message = detail .. ": " .. path })
  end
  return result(info, reason, detail, skew)
end

--- v:stream(headers) -> stream | nil, err
-- Incremental form: stream:update(chunk) any number of times, then
-- stream:finish() -> info | nil, err. Header and timestamp errors are
-- reported here, before any body is read.
local Stream = {}
Stream.__index = Stream
Stream.__tostring = function()
  return "linqwebhooks.verify_stream"
end

function Verifier:stream(headers)
  headers = check_headers("verifier:stream", headers)
  local s, reason, detail = self._kr:stream(headers, self._scheme_n, now(self), self._tolerance)
  if not s then
    return nil, errors.verification(reason, detail)
  end
  return setmetatable({ _s = s }, Stream)
end

function Stream:update(chunk)
  if type(chunk) ~= "string" then
    error("stream:update: argument 'chunk' must be a string, got " .. type(chunk), 2)
  end
  if self._done then
    error("stream:update: the stream is finished or closed", 2)
  end
  self._s:update(chunk)
  return self
end

function Stream:finish()
  if self._done then
    error("stream:finish: the stream is finished or closed", 2)
  end
  self._done = true
  return result(self._s:finish())
end

function Stream:close()
  self._done = true
  self._s:close()
end

--- v:unwrap(body, headers) -> event | nil, err: verify, then decode.
function Verifier:unwrap(body, headers)
  if self._closed then
    error("verifier:unwrap: the verifier is closed", 2)
  end
  local info, err = self:verify(body, headers)
  if not info then
    return nil, err
  end
  return event.decode(body, info) -- the verification result is the delivery info
end

--- v:close(): wipes the key material now instead of at garbage collection.
function Verifier:close()
  self._closed = true
  self._kr:close()
end

--- linq.verify(secret_or_secrets, body, headers, opts) -> info | nil, err
function M.verify(secrets, body, headers, opts)
  local o = {}
  if opts ~= nil then
    if type(opts) ~= "table" then
      error("linq.verify: argument 'opts' must be a table, got " .. type(opts), 2)
    end
    for k, v in pairs(opts) do
      if k == "secret" or k == "secrets" then
        error("linq.verify: give the secret(s) as the first argument, not in 'opts'", 2)
      end
      o[k] = v
    end
  end
  if type(secrets) == "table" then
    o.secrets = secrets
  elseif type(secrets) == "string" then
    o.secret = secrets
  else
    error("linq.verify: argument 'secret' must be a string or an array of strings, got "
      .. type(secrets), 2)
  end
  local v = M.new(o, 2, "linq.verify")
  local info, err = v:verify(body, headers)
  v:close()
  return info, err
end

local SIGN_SCHEMA = {
  secret = "string",
  secrets = "table",
  body = "string",
  id = "string",
  timestamp = { types = { "number", "string" } },
  scheme = { types = { "string" }, enum = { "standard", "legacy", "both" } },
}

local function random_id()
  local bytes = core.random_bytes(12)
  return "msg_" .. (bytes:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

--- linq.sign{ secret | secrets, body, id, timestamp, scheme = "standard" } -> headers
-- With several secrets the Standard header carries one `v1,` entry per
-- secret (as a sender does during rotation); legacy uses the first.
function M.sign(opts)
  if type(opts) ~= "table" then
    error("linq.sign: options table expected, got " .. type(opts), 2)
  end
  options.check("linq.sign", opts, SIGN_SCHEMA, 2)
  local list = secret_list("linq.sign", opts, 2)
  if opts.body == nil then
    error("linq.sign: option 'body' is required", 2)
  end
  local ts = opts.timestamp or os.time()
  if type(ts) == "number" then
    if ts < 0 or ts % 1 ~= 0 or ts >= 2 ^ 63 then
      error("linq.sign: option 'timestamp' must be a whole number of unix seconds", 2)
    end
    ts = string.format("%d", ts)
  elseif not ts:match("^%d+$") then
    error("linq.sign: option 'timestamp' must be decimal digits", 2)
  end
  local scheme = opts.scheme or "standard"
  local kr = keyring("linq.sign", list, 2)
  local headers = {}
  if scheme == "standard" or scheme == "both" then
    local id = opts.id or random_id()
    local sigs = {}
    for i = 1, #list do
      local sig, why = kr:sign_standard(i, id, ts, opts.body)
      if not sig then
        kr:close()
        error("linq.sign: cannot sign (" .. why .. "): check 'id' (printable ASCII, no '.')", 2)
      end
      sigs[i] = sig
    end
    headers["webhook-id"] = id
    headers["webhook-timestamp"] = ts
    headers["webhook-signature"] = table.concat(sigs, " ")
  end
  if scheme == "legacy" or scheme == "both" then
    headers["X-Webhook-Timestamp"] = ts
    headers["X-Webhook-Signature"] = kr:sign_legacy(1, ts, opts.body)
  end
  kr:close()
  return headers
end

M.Verifier = Verifier
return M
