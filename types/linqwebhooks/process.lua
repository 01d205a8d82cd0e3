---@meta linqwebhooks.process
-- `require "linqwebhooks.process"`: process primitives (csrc/lua/process.c) for
-- the plain-Lua receiver, the emulator, hooks:work, specs and benchmarks.
-- nginx workers never load it.

---@class linqwebhooks.process
local process = {}

---Installs the SIGTERM/SIGINT handlers (idempotent).
---@return true
function process.signal_watch() end

---The signal received since `signal_watch` (the flag is not cleared).
---@return "SIGTERM"|"SIGINT"|nil
function process.signal_pending() end

---Restores the previous handlers and clears the flag (idempotent).
---@return true
function process.signal_unwatch() end

---@return integer
function process.getpid() end

---@param pid integer
---@param sig "TERM"|"KILL"|"INT"|0 0 = probe: true while the process exists
---@return true|nil ok
---@return string|nil err
function process.kill(pid, sig) end

---@param path string
---@param mode integer e.g. 384 = 0600
---@return true|nil ok
---@return string|nil err
function process.chmod(path, mode) end

---@return number ns a monotonic clock reading in nanoseconds
function process.now_ns() end

return process
