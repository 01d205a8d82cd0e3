--- linqwebhooks.json: Lua tables <-> JSON on the C core (cJSON).
--
--   json.decode(str)   -> value | nil, message
--   json.encode(value) -> string | nil, message
--   json.null          -> the JSON null sentinel (the same value as linq.null)
--   json.array([t])    -> t (or a new table), marked as a JSON array
--   json.is_array(t)   -> true when t is marked as a JSON array
--
-- Mapping:
--   null <-> json.null; true/false <-> booleans; strings <-> strings (bytes
--   pass through unchanged both ways: UTF-8 is neither validated nor
--   normalised; \uXXXX escapes, surrogate pairs included, decode to UTF-8;
--   NUL bytes are fine both ways and encode as \u0000).
--
-- Arrays vs objects (the empty-table policy):
--   * Every decoded JSON array gets a shared metatable (json.is_array is true),
--     so `[]` decodes to an empty table that encodes back as `[]`.
--     Decoded objects are plain tables.
--   * Encoding: a table marked with json.array(t) (or decoded from an array)
--     is an array; a non-empty table whose keys are exactly 1..n is an array;
--     a table whose keys are all strings is an object.
--   * An EMPTY table that is not marked encodes as an object `{}`.
--     Use json.array() / json.array(t) for an empty array.
--   * Sparse tables (keys 1, 3), mixed tables (1..n plus string keys) and
--     keys that are neither strings nor integers are refused: nil, message.
--   * Metatables other than the array marker are ignored (raw contents are
--     encoded); object key order is unspecified.
--
-- Numbers:
--   * Lua 5.3+/5.4: a JSON integer literal (no fraction, no exponent) that
--     fits in 64 bits decodes to an exact Lua integer; other numbers (1.0,
--     1e3, integers beyond 64 bits) decode to floats. Integers encode exactly
--     over the whole int64 range.
--   * LuaJIT / Lua 5.1: numbers are doubles, so integers beyond 2^53 lose
--     precision on decode (9007199254740993 -> 9007199254740992).
--   * Floats encode with the fewest digits (15 to 17) that read back exactly;
--     integral floats encode without a fraction (5.0 -> 5, which decodes as
--     the integer 5 on 5.4; -0.0 -> -0). NaN and infinities cannot be
--     encoded (nil, message). A literal beyond the double range (1e400)
--     decodes to an infinity, as in JavaScript.
--   * LuaJIT boxed 64-bit integers (cdata 1LL) cannot be encoded.
--   * Numbers must follow the JSON grammar (01, 1., .5, +1 are refused).
--
-- Limits and errors:
--   * Nesting deeper than 128 arrays/objects is refused both ways; a table
--     that contains itself is refused on encode (no hang).
--   * Invalid input returns nil, "invalid JSON at byte N[: reason]" (N is the
--     1-based position in the input). Input size limits are the caller's
--     policy: check #str before decoding untrusted bodies.
--   * Refused: raw NUL bytes anywhere, malformed \u escapes, lone surrogate
--     escapes ("\uD800"), trailing data after the value, comments, trailing
--     commas, NaN/Infinity literals.
--   * Leniencies inherited from cJSON: a UTF-8 BOM at the start is skipped;
--     other control bytes (0x01-0x1F) are accepted raw inside strings and as
--     whitespace between tokens. Duplicate object keys: the last one wins.
--   * Wrong argument types raise (level 2, naming the argument).
local core = require "linqwebhooks.core"

local json_decode, json_encode = core.json_decode, core.json_encode
local ARRAY_MT = core.json_array_mt
local type, error, getmetatable, setmetatable = type, error, getmetatable, setmetatable

local M = {
  null = core.null,
  MAX_DEPTH = 128,
}

--- Decodes a JSON text. Returns the value, or nil and a message.
function M.decode(str)
  if type(str) ~= "string" then
    error("bad argument #1 to 'decode' (string expected, got " .. type(str) .. ")", 2)
  end
  return json_decode(str)
end

--- Encodes a Lua value as compact JSON. Returns the string, or nil and a
-- message naming the problem and where it is (e.g. "... (at data.parts[2])").
function M.encode(value)
  if value == nil then
    error("bad argument #1 to 'encode' (value expected, got nil)", 2)
  end
  return json_encode(value)
end

--- Marks t (or a new table when t is nil) as a JSON array and returns it.
function M.array(t)
  if t == nil then
    return setmetatable({}, ARRAY_MT)
  end
  if type(t) ~= "table" then
    error("bad argument #1 to 'array' (table expected, got " .. type(t) .. ")", 2)
  end
  local mt = getmetatable(t)
  if mt ~= nil and mt ~= ARRAY_MT then
    error("bad argument #1 to 'array' (table already has a metatable)", 2)
  end
  return setmetatable(t, ARRAY_MT)
end

--- True when t is marked as a JSON array (decoded from one or json.array).
function M.is_array(t)
  return type(t) == "table" and getmetatable(t) == ARRAY_MT
end

return M
