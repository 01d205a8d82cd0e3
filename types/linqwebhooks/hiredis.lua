---@meta linqwebhooks.hiredis
-- `require "linqwebhooks.hiredis"`: the RESP layer of the Redis client on
-- hiredis (csrc/lua/hiredis.c). Internal: applications use
-- `linqwebhooks.redis`, whose `c_module()` returns this module.
--
-- Replies: bulk string -> string, integer -> integer, array -> table (1..n),
-- status -> { ok = "OK" }, nil -> false, an error inside an array -> { err = "..." }.

---@alias linqwebhooks.RedisReply string|integer|table|false

---A blocking hiredis connection.
---@class linqwebhooks.hiredis.Conn
local Conn = {}
---@param ... string|number the command and its arguments
---@return linqwebhooks.RedisReply|nil reply
---@return string|nil err
---@return "redis"|"io"|nil kind "redis": an error reply (still usable); "io": the connection is unusable
function Conn:command(...) end
---@return boolean
function Conn:is_open() end
---Idempotent; also __gc / __close.
function Conn:close() end

---A RESP reply parser (redisReader).
---@class linqwebhooks.hiredis.Reader
local Reader = {}
---@param bytes string
---@return true|nil ok
---@return string|nil err
function Reader:feed(bytes) end
---@return linqwebhooks.RedisReply|nil reply nil and no error: more bytes needed
---@return string|nil err
---@return "redis"|"protocol"|nil kind "protocol": unparsable bytes (the reader is then unusable)
function Reader:get() end
---Idempotent; also __gc / __close.
function Reader:close() end

---@class linqwebhooks.hiredis
---@field hiredis_version string e.g. "hiredis 0.14.1"
local hiredis = {}

---@param host string
---@param port integer
---@param connect_timeout number seconds (0 = none)
---@param timeout number seconds per command (0 = none)
---@return linqwebhooks.hiredis.Conn|nil conn
---@return string|nil err
function hiredis.connect(host, port, connect_timeout, timeout) end

---@param path string
---@param connect_timeout number
---@param timeout number
---@return linqwebhooks.hiredis.Conn|nil conn
---@return string|nil err
function hiredis.connect_unix(path, connect_timeout, timeout) end

---@param ... string|number
---@return string resp the command as RESP bytes
function hiredis.format(...) end

---@return linqwebhooks.hiredis.Reader
function hiredis.reader() end

return hiredis
