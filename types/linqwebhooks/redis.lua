---@meta linqwebhooks.redis
-- `require "linqwebhooks.redis"`: the Redis client behind the Redis store and
-- inbox (docs/scale-out.md#redis). Plain Lua: hiredis's blocking connection
-- (redis://, unix://) or LuaSocket + LuaSec (rediss://); inside nginx:
-- cosockets with a keepalive pool. The password never appears in errors or
-- tostring.

---@class linqwebhooks.RedisOptions
---@field url string redis://[[user]:password@]host[:port][/db], rediss://..., unix://[[user]:password@]/path[?db=N]
---@field timeout? number seconds per command, default 5
---@field connect_timeout? number seconds, default `timeout`
---@field cafile? string CA bundle for rediss:// (default: the system store; in nginx: lua_ssl_trusted_certificate)
---@field verify? boolean default true; false only for tests
---@field server_name? string the TLS name to check, default the URL's host
---@field pool_size? integer nginx keepalive pool, default 32

---@class linqwebhooks.RedisClient
local Client = {}
---One command. A top-level error reply: nil, "ERR ...", "redis" (the connection
---stays usable); a transport failure: nil, "redis: host:port: ...", "io".
---@param ... string|number
---@return linqwebhooks.RedisReply|nil reply
---@return string|nil err
---@return "redis"|"io"|nil kind
function Client:call(...) end
---A script by EVALSHA (SCRIPT LOAD once, again after SCRIPT FLUSH).
---@param src string
---@param keys string[]
---@param args (string|number)[]
---@return linqwebhooks.RedisReply|nil reply
---@return string|nil err
---@return "redis"|"io"|nil kind
function Client:eval(src, keys, args) end
---Several commands in one write.
---@param cmds (string|number)[][]
---@return { [1]: linqwebhooks.RedisReply|nil, [2]: string|nil, [3]: string|nil }[]|nil replies `{ reply, err, kind }` each
---@return string|nil err
---@return string|nil kind
function Client:pipeline(cmds) end
---Idempotent; also __gc / __close.
function Client:close() end

---@class linqwebhooks.redis
local redis = {}

---A client; connects on the first call.
---@param opts linqwebhooks.RedisOptions
---@return linqwebhooks.RedisClient
function redis.new(opts) end

---A client, connected now (AUTH, SELECT, PING).
---@param opts linqwebhooks.RedisOptions
---@return linqwebhooks.RedisClient|nil client
---@return string|nil err
function redis.connect(opts) end

---@param url string
---@return table|nil cfg { scheme, tls, host, port, path, db, user, password }
---@return string|nil err never echoes the URL
function redis.parse_url(url) end

---The URL with the password replaced by `***`.
---@param url string
---@return string
function redis.redacted(url) end

---@return linqwebhooks.hiredis the C module
function redis.c_module() end

return redis
