-- Commands for running a Lua child process with this run's interpreter and
-- module paths (so specs pass under plain `busted` too, not only `make test`).
local M = {}

local function q(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

M.interpreter = rawget(_G, "jit") and "luajit" or "lua5.4"

--- Shell prefix: env LUA_PATH=... LUA_CPATH=... <interpreter>
function M.lua()
  return "env LUA_PATH=" .. q(package.path) .. " LUA_CPATH=" .. q(package.cpath) .. " " .. M.interpreter
end

return M
