--- Helpers shared by the benchmarks (bench/*.lua, bench/nginx/deliveries.lua).
-- Not a module on the path: each benchmark loads it from next to itself,
--   local util = dofile(here .. "/util.lua")
-- (here: the benchmark's own directory).
local M = {}

--- The whole file, or nil, err (io.open's message) if it cannot be opened.
function M.read_file(path)
  local f, err = io.open(path, "rb")
  if not f then
    return nil, err
  end
  local s = f:read("*a")
  f:close()
  return s
end

return M
