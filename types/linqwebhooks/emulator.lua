---@meta linqwebhooks.emulator
-- `require "linqwebhooks.emulator"`: a local stand-in for the Linq API (docs/emulator.md).

---@class linqwebhooks.EmulatorDelivery
---@field attempts? integer default 10
---@field base_delay? number seconds, default 3
---@field max_delay? number seconds, default 900
---@field timeout? number seconds per attempt, default 10
---@field max_in_flight? integer attempts at once (the rest queue), 1-512, default 128
---@field ca_file? string CAs to trust for https:// targets
---@field insecure? boolean true: skip certificate checks of https:// targets (tests)

---Options of `serve` and `spawn` (strict).
---@class linqwebhooks.EmulatorOptions
---@field api_key? string required by serve; "test_key" in spawn
---@field host? string default "127.0.0.1"
---@field port? integer default 8787 (0 in spawn: a free port)
---@field state_file? string subscriptions survive restarts
---@field partner_id? string
---@field delivery? linqwebhooks.EmulatorDelivery
---@field client_timeout? number seconds, default 30
---@field max_body? integer bytes, default 1 MiB
---@field max_connections? integer inbound connections at once, 1-512, default 256 (at the cap the quietest is closed)
---@field quiet? boolean no "stopped" line on stderr at exit
---@field watch_pid? integer exit when this process is gone (spawn sets it)
---@field verbose? boolean
---@field interpreter? string spawn only: default the caller's ("luajit" or "lua5.4")
---@field startup_timeout? number spawn only: seconds, default 15
---@field log_file? string spawn only

---A running child emulator.
---@class linqwebhooks.EmulatorHandle
---@field url string http://127.0.0.1:PORT
---@field api_url string http://127.0.0.1:PORT/api/partner (a client's base_url)
---@field api_key string
---@field pid integer
---@field log_file string
local Handle = {}
---@return string the child's output so far
function Handle.output() end
---SIGTERM, bounded wait; true after a clean exit. Idempotent.
---@return boolean
function Handle.stop() end

---@class linqwebhooks.emulator
local emulator = {}

---Runs the emulator in this process until SIGTERM or SIGINT.
---@param opts linqwebhooks.EmulatorOptions
---@return true|nil ok
---@return string|nil err
function emulator.serve(opts) end

---Starts the emulator as a child process on a free port; raises if it does not come up.
---@param opts? linqwebhooks.EmulatorOptions
---@return linqwebhooks.EmulatorHandle
function emulator.spawn(opts) end

return emulator
