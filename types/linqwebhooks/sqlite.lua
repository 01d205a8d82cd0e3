---@meta linqwebhooks.sqlite
-- `require "linqwebhooks.sqlite"`: a minimal libsqlite3 binding
-- (csrc/lua/sqlite.c) for the SQLite inbox. Internal.
-- Parameters: nil, booleans (0/1), numbers, strings. Rows: arrays of
-- { column = value } tables (NULL columns are absent).

---@class linqwebhooks.sqlite.Stmt
local Stmt = {}
---Binds, steps to the end, resets.
---@param ... nil|boolean|number|string
---@return table[]|nil rows
---@return string|nil err
function Stmt:query(...) end
---Idempotent; also __gc / __close.
function Stmt:close() end

---@class linqwebhooks.sqlite.Db
local Db = {}
---Several statements, no parameters.
---@param sql string
---@return true|nil ok
---@return string|nil err
function Db:exec(sql) end
---One statement with parameters.
---@param sql string
---@param ... nil|boolean|number|string
---@return table[]|nil rows
---@return string|nil err
function Db:query(sql, ...) end
---@param sql string
---@return linqwebhooks.sqlite.Stmt|nil stmt
---@return string|nil err
function Db:prepare(sql) end
---@return integer
function Db:changes() end
---@return integer
function Db:last_insert_rowid() end
---@param ms integer
function Db:busy_timeout(ms) end
---Finalizes its statements first; idempotent; also __gc / __close.
function Db:close() end

---@class linqwebhooks.sqlite
---@field sqlite_version string
local sqlite = {}

---@param path string
---@param busy_timeout_ms? integer
---@return linqwebhooks.sqlite.Db|nil db
---@return string|nil err
function sqlite.open(path, busy_timeout_ms) end

return sqlite
