--- The LuaJIT path to the C core: FFI bindings to the public C API
-- (csrc/linqwebhooks.h: keyring, verify, verify_file, streaming, signing),
-- with the same interface and results as the classic Lua C-API binding in
-- linqwebhooks.core (keyring(list) -> keyring object with verify_file,
-- stream, sign_standard, sign_legacy, close; bind_verify(...) -> the verify
-- method). Calls through the FFI are compiled by LuaJIT's trace compiler
-- into direct C calls; calls into a Lua C function end a trace.
--
-- M.available is false (and M.why says why) under Lua 5.x, when the symbols
-- cannot be found, or when LINQWH_NO_FFI is set in the environment; the
-- verifier then uses the classic binding. The symbols are taken from the
-- very core.so that `require "linqwebhooks.core"` loaded (located with
-- package.searchpath on package.cpath, then ffi.load), else from the
-- global namespace (a host that linked the core in).
local core = require "linqwebhooks.core"

local M = { available = false }

local ok_ffi, ffi = pcall(require, "ffi")
if not ok_ffi or type(rawget(_G, "jit")) ~= "table" then
  M.why = "not LuaJIT"
  return M
end
if os.getenv("LINQWH_NO_FFI") and os.getenv("LINQWH_NO_FFI") ~= "" and os.getenv("LINQWH_NO_FFI") ~= "0" then
  M.why = "LINQWH_NO_FFI is set"
  return M
end

local cdef_ok, cdef_err = pcall(ffi.cdef, [[
typedef struct linqwh_keyring linqwh_keyring;
typedef struct linqwh_verify_ctx linqwh_verify_ctx;
typedef struct linqwh_headers {
  const char *id; size_t id_len;
  const char *timestamp; size_t timestamp_len;
  const char *signature; size_t signature_len;
  const char *legacy_timestamp; size_t legacy_timestamp_len;
  const char *legacy_signature; size_t legacy_signature_len;
} linqwh_headers;
typedef struct linqwh_verify_opts { int scheme; int64_t now; int64_t tolerance; } linqwh_verify_opts;
typedef struct linqwh_result {
  int scheme; size_t key_index; int64_t timestamp; int64_t skew; const char *detail;
} linqwh_result;
const char *linqwh_status_reason(int st);
const char *linqwh_version(void);
int linqwh_keyring_new(linqwh_keyring **out, const char *const *secrets, const size_t *lens,
                       size_t n, char *errbuf, size_t errlen);
size_t linqwh_keyring_size(const linqwh_keyring *kr);
void linqwh_keyring_free(linqwh_keyring *kr);
int linqwh_verify(const linqwh_keyring *kr, const linqwh_headers *h, const void *body,
                  size_t body_len, const linqwh_verify_opts *opts, linqwh_result *out);
int linqwh_verify_begin(linqwh_verify_ctx **out, const linqwh_keyring *kr,
                        const linqwh_headers *h, const linqwh_verify_opts *opts,
                        linqwh_result *res);
int linqwh_verify_update(linqwh_verify_ctx *ctx, const void *data, size_t len);
int linqwh_verify_finish(linqwh_verify_ctx *ctx, linqwh_result *out);
void linqwh_verify_ctx_free(linqwh_verify_ctx *ctx);
int linqwh_verify_file(const linqwh_keyring *kr, const linqwh_headers *h, const char *path,
                       const linqwh_verify_opts *opts, linqwh_result *out);
int linqwh_sign_standard(const linqwh_keyring *kr, size_t key_index, const char *id,
                         size_t id_len, const char *timestamp, size_t timestamp_len,
                         const void *body, size_t body_len, char *out);
int linqwh_sign_legacy(const linqwh_keyring *kr, size_t key_index, const char *timestamp,
                       size_t timestamp_len, const void *body, size_t body_len, char *out);
int linqwh_envelope_scan(const char *body, size_t len, int64_t *spans, int *kinds);
int linqwh_json_members(const char *text, size_t len, const char *const *names, int n,
                        int64_t *spans, int *kinds);
int linqwh_parts_text(const char *text, size_t len, char *out, size_t cap, size_t *outlen);
]])
if not cdef_ok then
  -- declared already by another copy of this module (e.g. a second package.path entry)
  if not tostring(cdef_err):find("redefine", 1, true) then
    M.why = "ffi.cdef failed: " .. tostring(cdef_err)
    return M
  end
end

local function has_symbols(lib)
  local ok, v = pcall(function() return lib.linqwh_version end)
  return ok and v ~= nil
end

local lib
do
  local path = package.searchpath and package.searchpath("linqwebhooks.core", package.cpath)
  if path then
    local ok, l = pcall(ffi.load, path)
    if ok and has_symbols(l) then
      lib = l
    end
  end
  if not lib and has_symbols(ffi.C) then
    lib = ffi.C
  end
end
if not lib then
  M.why = "the linqwh_* symbols of linqwebhooks.core were not found"
  return M
end
if ffi.string(lib.linqwh_version()) ~= core._VERSION then
  M.why = "version mismatch between the FFI library and linqwebhooks.core"
  return M
end

M.available = true
M.lib = lib

local C = lib
local ffi_string, ffi_gc, ffi_new = ffi.string, ffi.gc, ffi.new
local type, error, setmetatable, tonumber, pairs = type, error, setmetatable, tonumber, pairs
local os_time = os.time

local OK = 0
local INVALID_HEADERS = 2
local SCHEME_LEGACY = 2
local STANDARD_SIG_SIZE, LEGACY_SIG_SIZE = 48, 65

-- status -> reason string, read once from the core
local REASON = {}
for st = 0, 15 do
  local p = C.linqwh_status_reason(st)
  if p ~= nil then
    REASON[st] = ffi_string(p)
  end
end

-- Scratch structures reused by every call (Lua code never yields between
-- filling them and the C call that reads them).
local H = ffi_new("linqwh_headers")
local O = ffi_new("linqwh_verify_opts")
local R = ffi_new("linqwh_result")

local NAMES = {
  ["webhook-id"] = 1, ["webhook-timestamp"] = 2, ["webhook-signature"] = 3,
  ["x-webhook-timestamp"] = 4, ["x-webhook-signature"] = 5,
}
local NAME_LEN = { [10] = true, [17] = true, [19] = true }
local lower = string.lower

local E_TWICE = "a signature header is given twice (different letter case)"
local E_REPEATED = "a signature header is repeated (an array of several values)"
local E_NOT_STRING = "a signature header value is not a string"

--- Reads the five signature headers from `headers` exactly as the classic
-- binding does (csrc/lua/verify.c, lwh_read_headers): names in any letter
-- case; a value is a string or an array of exactly one string; a repeated
-- header or the same name twice in different case is an error of its
-- header set. Returns id, ts, sig, lts, lsig, header error (or nil).
-- (found values go to a scratch table, not to loop-carried locals, so the
-- loop keeps stable types and LuaJIT compiles it)
local V = {}
local function read_headers(headers, scheme)
  V[1], V[2], V[3], V[4], V[5] = nil, nil, nil, nil, nil
  local std_err, legacy_err, std_present = nil, nil, false
  for k, v in pairs(headers) do
    if type(k) == "string" and NAME_LEN[#k] then
      local slot = NAMES[k] or NAMES[lower(k)]
      if slot then
        local std = slot <= 3
        if std then
          std_present = true
        end
        if type(v) == "table" and #v == 1 then
          v = v[1]
        end
        local err
        if V[slot] ~= nil then
          err = E_TWICE
        elseif type(v) == "table" then
          err = E_REPEATED
        elseif type(v) ~= "string" then
          err = E_NOT_STRING
        end
        if err then
          V[slot] = nil
          if std then
            std_err = err
          else
            legacy_err = err
          end
        else
          V[slot] = v
        end
      end
    end
  end
  local herr
  if scheme == 1 or (scheme == 0 and std_present) then
    herr = std_err
  else
    herr = legacy_err
  end
  return V[1], V[2], V[3], V[4], V[5], herr
end

local function fill(id, ts, sig, lts, lsig)
  H.id = id
  H.id_len = id and #id or 0
  H.timestamp = ts
  H.timestamp_len = ts and #ts or 0
  H.signature = sig
  H.signature_len = sig and #sig or 0
  H.legacy_timestamp = lts
  H.legacy_timestamp_len = lts and #lts or 0
  H.legacy_signature = lsig
  H.legacy_signature_len = lsig and #lsig or 0
end

local function clear()
  H.id, H.timestamp, H.signature, H.legacy_timestamp, H.legacy_signature = nil, nil, nil, nil, nil
end

-- The info table of a success, as the classic binding builds it.
local function info_of(id)
  if R.scheme == SCHEME_LEGACY then
    return { scheme = "legacy", key_index = tonumber(R.key_index) + 1,
             timestamp = tonumber(R.timestamp) }
  end
  return { scheme = "standard", key_index = tonumber(R.key_index) + 1,
           timestamp = tonumber(R.timestamp), id = id }
end

local function detail_of(st)
  local d = R.detail
  if d ~= nil then
    return ffi_string(d)
  end
  return REASON[st]
end

-- The failure message and the skew of R, as the classic binding gives them
-- (csrc/lua/verify.c, lwh_failure_message / lwh_push_result): for an
-- authentic delivery outside the window (R.skew ~= 0) the measured skew; in
-- Lua the skew is this host's clock minus the timestamp (the opposite sign of
-- linqwh_result.skew). -> message, skew | nil
local function failure(st, tolerance)
  local skew = R.skew
  if skew == 0 then
    return detail_of(st), nil
  end
  skew = tonumber(skew)
  if tonumber(R.timestamp) < 1000000000000 and tolerance >= 0 then
    if skew < 0 then
      return string.format("timestamp %d s older than the %d s tolerance, signature valid: "
        .. "check this host's clock", -skew, tolerance), -skew
    end
    return string.format("timestamp %d s in the future, beyond the %d s tolerance, "
      .. "signature valid: check this host's clock", skew, tolerance), -skew
  end
  return detail_of(st), -skew
end

local I64_MIN, I64_LIM = -9223372036854775808.0, 9223372036854775808.0

local function check_i64(n, what, level)
  if type(n) ~= "number" then
    error("bad argument (number expected, got " .. type(n) .. ")", level + 1)
  end
  if not (n >= I64_MIN and n < I64_LIM) then
    error("bad argument (" .. what .. ")", level + 1)
  end
  return n
end

local function trunc(n)
  return n >= 0 and math.floor(n) or math.ceil(n)
end

---------------------------------------------------------------- keyring

local Keyring = {}
Keyring.__index = Keyring
Keyring.__tostring = function(k)
  if k._kr == nil then
    return "linqwebhooks.Keyring (closed)"
  end
  return "linqwebhooks.Keyring (" .. k._n .. " secrets)"
end
Keyring.__metatable = "linqwebhooks.Keyring"

local MAX_KEYS = 16

--- keyring(secrets) -> keyring | nil, message
function M.keyring(list)
  if type(list) ~= "table" then
    error("bad argument #1 to 'keyring' (table expected, got " .. type(list) .. ")", 2)
  end
  local n = #list
  if n == 0 or n > MAX_KEYS then
    return nil, "need 1 to " .. MAX_KEYS .. " secrets"
  end
  local ptrs = ffi_new("const char *[?]", n)
  local lens = ffi_new("size_t[?]", n)
  for i = 1, n do
    local s = list[i]
    if type(s) ~= "string" then
      return nil, "secret #" .. i .. ": must be a string"
    end
    ptrs[i - 1] = s
    lens[i - 1] = #s
  end
  local out = ffi_new("linqwh_keyring *[1]")
  local errbuf = ffi_new("char[160]")
  local st = C.linqwh_keyring_new(out, ptrs, lens, n, errbuf, 160)
  if st ~= OK then
    return nil, ffi_string(errbuf)
  end
  return setmetatable({ _kr = ffi_gc(out[0], C.linqwh_keyring_free), _n = n }, Keyring)
end

local function live(k, what)
  local kr = k._kr
  if kr == nil then
    error("bad argument #1 to '" .. what .. "' (keyring is closed)", 3)
  end
  return kr
end

-- The one destroy of a keyring or stream (close, or the GC finalizer):
-- idempotent, the pointer field cleared before it is freed.
local function release(obj, field, free)
  local ptr = obj[field]
  if ptr ~= nil then
    obj[field] = nil
    ffi_gc(ptr, nil)
    free(ptr)
  end
end

function Keyring:close()
  release(self, "_kr", C.linqwh_keyring_free)
end

local function read_opts(scheme, now, tolerance)
  O.scheme = scheme
  O.now = trunc(check_i64(now, "now must be a finite number", 3))
  O.tolerance = trunc(check_i64(tolerance or -1, "tolerance must be a finite number", 3))
end

--- kr:verify_file(path, headers, scheme, now, tolerance) -> info | nil, reason, detail
function Keyring:verify_file(path, headers, scheme, now, tolerance)
  local kr = live(self, "verify_file")
  if type(path) ~= "string" then
    error("bad argument #2 to 'verify_file' (string expected, got " .. type(path) .. ")", 2)
  end
  read_opts(scheme, now, tolerance)
  local id, ts, sig, lts, lsig, herr = read_headers(headers, scheme)
  if herr then
    return nil, "invalid_headers", herr
  end
  fill(id, ts, sig, lts, lsig)
  R.detail = nil
  R.skew = 0
  local st = C.linqwh_verify_file(kr, H, path, O, R)
  clear()
  if st ~= OK then
    local msg, skew = failure(st, tonumber(O.tolerance))
    return nil, REASON[st], msg, skew
  end
  return info_of(id)
end

local Stream = {}
Stream.__index = Stream
Stream.__tostring = function(s)
  return "linqwebhooks.VerifyStream (" .. (s._ctx ~= nil and "open" or "closed") .. ")"
end

--- kr:stream(headers, scheme, now, tolerance) -> stream | nil, reason, detail
function Keyring:stream(headers, scheme, now, tolerance)
  local kr = live(self, "stream")
  read_opts(scheme, now, tolerance)
  local id, ts, sig, lts, lsig, herr = read_headers(headers, scheme)
  if herr then
    return nil, "invalid_headers", herr
  end
  fill(id, ts, sig, lts, lsig)
  local out = ffi_new("linqwh_verify_ctx *[1]")
  R.detail = nil
  R.skew = 0
  local st = C.linqwh_verify_begin(out, kr, H, O, R)
  if st ~= OK then
    clear()
    local msg, skew = failure(st, tonumber(O.tolerance))
    return nil, REASON[st], msg, skew
  end
  clear()
  return setmetatable({ _ctx = ffi_gc(out[0], C.linqwh_verify_ctx_free), _id = id }, Stream)
end

function Stream:update(chunk)
  if type(chunk) ~= "string" then
    error("bad argument #2 to 'update' (string expected, got " .. type(chunk) .. ")", 2)
  end
  local ctx = self._ctx
  if ctx == nil then
    error("verify stream is finished or closed", 2)
  end
  if C.linqwh_verify_update(ctx, chunk, #chunk) ~= OK then
    error("verify stream: HMAC update failed", 2)
  end
  return self
end

function Stream:close()
  release(self, "_ctx", C.linqwh_verify_ctx_free)
end

function Stream:finish()
  local ctx = self._ctx
  if ctx == nil then
    error("verify stream is finished or closed", 2)
  end
  R.detail = nil
  R.skew = 0
  local st = C.linqwh_verify_finish(ctx, R)
  local res, msg, skew
  if st == OK then
    res = info_of(self._id)
  else
    msg, skew = failure(st, -1)
  end
  self:close()
  if res then
    return res
  end
  return nil, REASON[st], msg, skew
end

local function key_index(k, kr, i, what)
  if type(i) ~= "number" or i % 1 ~= 0 then
    error("bad argument #2 to '" .. what .. "' (number has no integer representation)", 3)
  end
  if i < 1 or i > tonumber(C.linqwh_keyring_size(kr)) then
    error("bad argument #2 to '" .. what .. "' (key index out of range)", 3)
  end
  local _ = k
  return i - 1
end

local function check_str(v, n, what)
  if type(v) ~= "string" then
    error("bad argument #" .. n .. " to '" .. what .. "' (string expected, got " .. type(v) .. ")", 3)
  end
end

--- kr:sign_standard(key_index, id, timestamp_string, body) -> "v1,..." | nil, reason
function Keyring:sign_standard(i, id, ts, body)
  local kr = live(self, "sign_standard")
  local k = key_index(self, kr, i, "sign_standard")
  check_str(id, 3, "sign_standard")
  check_str(ts, 4, "sign_standard")
  check_str(body, 5, "sign_standard")
  local out = ffi_new("char[?]", STANDARD_SIG_SIZE)
  local st = C.linqwh_sign_standard(kr, k, id, #id, ts, #ts, body, #body, out)
  if st ~= OK then
    return nil, REASON[st]
  end
  return ffi_string(out)
end

--- kr:sign_legacy(key_index, timestamp_string, body) -> hex | nil, reason
function Keyring:sign_legacy(i, ts, body)
  local kr = live(self, "sign_legacy")
  local k = key_index(self, kr, i, "sign_legacy")
  check_str(ts, 3, "sign_legacy")
  check_str(body, 4, "sign_legacy")
  local out = ffi_new("char[?]", LEGACY_SIG_SIZE)
  local st = C.linqwh_sign_legacy(kr, k, ts, #ts, body, #body, out)
  if st ~= OK then
    return nil, REASON[st]
  end
  return ffi_string(out)
end

---------------------------------------------------------------- envelope

local SPANS = ffi_new("int64_t[16]")
local KINDS = ffi_new("int[8]")
local sub = string.sub

local byte = string.byte
local QUOTE = 34

-- A member other than data, from the scan: its string, or nil when absent
-- or not a string; false when it is a string with escapes (decode instead).
local function member(raw, k)
  local kind = KINDS[k]
  if kind == 0 then
    return nil
  end
  local off, len = tonumber(SPANS[2 * k]), tonumber(SPANS[2 * k + 1])
  if kind == 1 then
    return sub(raw, off + 1, off + len)
  end
  if byte(raw, off + 1) == QUOTE then
    return false
  end
  return nil
end

--- envelope(raw) -> event_type, event_id, created_at, api_version,
--   webhook_version, trace_id, partner_id, data_first, data_last | nil
-- One pass of csrc/ffi.c's linqwh_envelope_scan over a body (a strict JSON
-- check that builds nothing). The envelope strings (nil when absent or not
-- strings), and the byte range of the text of `data` (nil when absent);
-- nil alone when the body must be decoded instead: not valid JSON (the
-- decoder gives the error), not an object, no string event_type / event_id,
-- a member written with escapes, or whatever the scan is not sure of.
function M.envelope(raw)
  if C.linqwh_envelope_scan(raw, #raw, SPANS, KINDS) ~= 1 then
    return nil
  end
  if KINDS[0] ~= 1 or KINDS[1] ~= 1 or SPANS[1] == 0 or SPANS[3] == 0 then
    return nil
  end
  local etype = sub(raw, tonumber(SPANS[0]) + 1, tonumber(SPANS[0] + SPANS[1]))
  local eid = sub(raw, tonumber(SPANS[2]) + 1, tonumber(SPANS[2] + SPANS[3]))
  local created_at, api_version, webhook_version = member(raw, 2), member(raw, 3), member(raw, 4)
  local trace_id, partner_id = member(raw, 5), member(raw, 6)
  if created_at == false or api_version == false or webhook_version == false or trace_id == false
    or partner_id == false then
    return nil
  end
  local first, last
  if KINDS[7] == 2 then
    first = tonumber(SPANS[14]) + 1
    last = tonumber(SPANS[14] + SPANS[15])
  elseif KINDS[7] == 1 then -- a string: its text with the quotes
    first = tonumber(SPANS[14])
    last = tonumber(SPANS[14] + SPANS[15]) + 1
  end
  return etype, eid, created_at, api_version, webhook_version, trace_id, partner_id, first, last
end

-- names for json_members, kept alive with their C array
local PARTS_NAMES = { "parts", "message", "part" }
local PARTS_C = ffi_new("const char *[3]", PARTS_NAMES)
local ONE_NAME = { "parts" }
local ONE_C = ffi_new("const char *[1]", ONE_NAME)

--- parts_spans(text, first, last) -> ok, then for "parts", "message", "part"
-- the byte range (first, last) of each member's value in text (nil, nil when
-- absent): the members of the object text:sub(first, last) that
-- event:parts() reads. ok is false when that text is not an object the scan
-- is sure of.
function M.parts_spans(text, first, last, only_parts)
  local names = only_parts and ONE_C or PARTS_C
  local n = only_parts and 1 or 3
  local st = C.linqwh_json_members(ffi.cast("const char *", text) + (first - 1), last - first + 1,
    names, n, SPANS, KINDS)
  if st ~= 1 then
    return false
  end
  local base = first - 1
  local a1, b1, a2, b2, a3, b3
  if KINDS[0] ~= 0 then
    a1 = base + tonumber(SPANS[0]) + 1
    b1 = base + tonumber(SPANS[0] + SPANS[1])
    if KINDS[0] == 1 then a1, b1 = a1 - 1, b1 + 1 end
  end
  if n > 1 and KINDS[1] ~= 0 then
    a2 = base + tonumber(SPANS[2]) + 1
    b2 = base + tonumber(SPANS[2] + SPANS[3])
    if KINDS[1] == 1 then a2, b2 = a2 - 1, b2 + 1 end
  end
  if n > 2 and KINDS[2] ~= 0 then
    a3 = base + tonumber(SPANS[4]) + 1
    b3 = base + tonumber(SPANS[4] + SPANS[5])
    if KINDS[2] == 1 then a3, b3 = a3 - 1, b3 + 1 end
  end
  return true, a1, b1, a2, b2, a3, b3
end

---------------------------------------------------------------- bound verify

--- bind_verify(keyring, scheme, tolerance, clock|nil, error_mt) -> function
-- The verify method of a verifier object: v:verify(body, headers) -> info |
-- nil, error object. Same checks, messages and results as the classic
-- binding's bound closure.
function M.bind_verify(k, scheme, tolerance, clock, error_mt)
  if getmetatable(k) ~= "linqwebhooks.Keyring" or k._kr == nil then
    error("bad argument #1 to 'bind_verify' (linqwebhooks.Keyring expected)", 2)
  end
  local tol = trunc(check_i64(tolerance, "tolerance must be a finite number", 2))
  return function(_, body, headers)
    if type(body) ~= "string" then
      error("verifier:verify: argument 'body' must be a string (the raw request body), got "
        .. type(body), 2)
    end
    if type(headers) ~= "table" then
      error("verifier:verify: argument 'headers' must be a table, got " .. type(headers), 2)
    end
    local kr = k._kr
    if kr == nil then
      error("verifier:verify: the verifier is closed", 2)
    end
    local now
    if clock == nil then
      -- the system clock; not read when the timestamp check is off
      now = tol >= 0 and os_time() or 0
    else
      now = clock()
      if type(now) ~= "number" then
        error("linq.verifier: clock must return a number, got " .. type(now), 2)
      end
      if not (now >= I64_MIN and now < I64_LIM) then
        error("linq.verifier: clock must return a finite number", 2)
      end
      now = trunc(now)
    end
    local id, ts, sig, lts, lsig, herr = read_headers(headers, scheme)
    local st, detail, skew
    if herr then
      st, detail = INVALID_HEADERS, herr
    else
      fill(id, ts, sig, lts, lsig)
      O.scheme = scheme
      O.now = now
      O.tolerance = tol
      R.detail = nil
      R.skew = 0
      st = C.linqwh_verify(kr, H, body, #body, O, R)
      clear()
      if st == OK then
        return info_of(id)
      end
      detail, skew = failure(st, tol)
    end
    return nil, setmetatable({ kind = "verification", reason = REASON[st], message = detail,
                               skew = skew }, error_mt)
  end
end

---------------------------------------------------------------- parts text

-- a reused output buffer (grown to the largest array seen, up to 64 KB;
-- larger arrays get their own)
local TEXT_MAX_KEEP = 65536
local text_buf, text_cap = nil, 0
local TEXT_LEN = ffi_new("size_t[1]")

--- parts_text(text, first, last) -> string | nil
-- The text parts of the JSON array text:sub(first, last) joined with "\n",
-- as event:text() computes them; nil when it must be decoded instead
-- (csrc/lua/json.c, linqwh_parts_text).
function M.parts_text(text, first, last)
  local n = last - first + 1
  if n < 2 then
    return nil
  end
  local buf = text_buf
  if n > text_cap then
    buf = ffi_new("char[?]", n)
    if n <= TEXT_MAX_KEEP then
      text_buf, text_cap = buf, n
    end
  end
  if C.linqwh_parts_text(ffi.cast("const char *", text) + (first - 1), n, buf, n, TEXT_LEN) ~= 1 then
    return nil
  end
  return ffi_string(buf, TEXT_LEN[0])
end

return M
