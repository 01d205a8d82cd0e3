--- Transport selection: which HTTP transport the client uses.
--
-- Contract (used by `linqwebhooks.client`):
--
--   local transport = require "linqwebhooks.transport"
--   local mod = transport.select(opts, level)
--   local t = mod.new{ timeout = s, connect_timeout = s, ca_file = path|nil, max_body = n,
--                      proxy = nil|false|url }   -- false: never a proxy (loopback base URLs)
--   local res, kind, msg = t:request(method, url, headers, body)   -- see transport/curl.lua
--   t:close()
--
-- `opts` is the client's option table (only `opts.transport` is read; nil is
-- fine). `level` is the level the caller would give error() itself (default
-- 1: errors point at the line calling select); linq.client's constructor
-- passes its own `level`, so errors point at the user's `linq.client{...}`.
-- Call it as a plain call, not a tail call (`return select(...)` drops a
-- frame). The returned module has `name` ("curl", "resty" or whatever a
-- custom module says) and `new`.
--
-- Order of choice:
--   1. explicit: `opts.transport` is a module table with a `new` function
--      (used as is: embedders who know what they are doing), or the name
--      "curl" / "resty";
--   2. inside nginx (the `ngx` global with `ngx.get_phase`), in a phase where
--      cosockets work (rewrite, server_rewrite, access, content, timer,
--      ssl_cert, ssl_session_fetch, ssl_client_hello, preread): "resty";
--   3. outside nginx: "curl" (libcurl in the C core).
-- Inside nginx in a phase without cosockets (init, init_worker, set,
-- header_filter, body_filter, log, balancer, exit_worker, ...) select raises:
-- libcurl would block the whole worker there. The message says what to do:
-- run the client in a zero-delay timer, `ngx.timer.at(0, fn)`.
-- An explicit "resty" outside nginx raises too (no cosockets there).
local M = {}

--- Phases in which ngx_lua allows cosockets (lua-nginx-module README,
-- "ngx.socket.tcp" context list).
M.COSOCKET_PHASES = {
  rewrite = true,
  server_rewrite = true,
  access = true,
  content = true,
  timer = true,
  ssl_cert = true,
  ssl_session_fetch = true,
  ssl_client_hello = true,
  preread = true,
}

local BUILTIN = {
  curl = "linqwebhooks.transport.curl",
  resty = "linqwebhooks.transport.resty",
}

--- The current ngx_lua phase, or nil outside nginx.
function M.phase()
  local ngx = rawget(_G, "ngx")
  if type(ngx) ~= "table" or type(ngx.get_phase) ~= "function" then
    return nil
  end
  local ok, phase = pcall(ngx.get_phase)
  if not ok then
    return nil
  end
  return phase
end

local function refuse(phase, level)
  error("linqwebhooks: no HTTP transport in nginx's '" .. tostring(phase) .. "' phase:"
    .. " cosockets are disabled there and the libcurl transport would block the whole"
    .. " nginx worker. Make the client calls in a zero-delay timer instead,"
    .. " ngx.timer.at(0, function(premature) ... end) (create the client inside it),"
    .. " or from a rewrite/access/content handler", level + 1)
end

--- transport.select(opts, level) -> transport module (see the top of this file).
function M.select(opts, level)
  level = (level or 1) + 1
  local explicit = opts and opts.transport
  if explicit ~= nil then
    if type(explicit) == "table" then
      if type(explicit.new) ~= "function" then
        error("linqwebhooks: option 'transport' must be \"curl\", \"resty\" or a module"
          .. " table with a 'new' function", level)
      end
      return explicit
    end
    if type(explicit) ~= "string" or not BUILTIN[explicit] then
      error("linqwebhooks: option 'transport' must be \"curl\", \"resty\" or a module"
        .. " table with a 'new' function, got " .. (type(explicit) == "string"
        and ("'" .. explicit .. "'") or type(explicit)), level)
    end
    if explicit == "resty" then
      local phase = M.phase()
      if not phase then
        error("linqwebhooks: transport \"resty\" needs OpenResty/nginx cosockets"
          .. " (no ngx.get_phase here); use the default libcurl transport", level)
      end
      if not M.COSOCKET_PHASES[phase] then
        refuse(phase, level)
      end
    end
    return require(BUILTIN[explicit])
  end
  local phase = M.phase()
  if phase == nil then
    return require(BUILTIN.curl)
  end
  if M.COSOCKET_PHASES[phase] then
    return require(BUILTIN.resty)
  end
  refuse(phase, level)
end

return M
