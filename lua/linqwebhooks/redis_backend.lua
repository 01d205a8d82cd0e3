--- Set-up shared by the Redis-backed store (store/redis.lua) and inbox
-- (inbox/redis.lua): their option schema (own keys plus the connection keys
-- of linqwebhooks.redis) and the client built from their options.
local options = require "linqwebhooks.options"
local redis = require "linqwebhooks.redis"

local M = {}

--- Check for the ttl / lease options: seconds > 0 (and below 2^31 ms).
function M.seconds(v)
  if v ~= v or v <= 0 or v >= 2147483 then
    return false, "must be a number of seconds > 0"
  end
  return true
end

--- own (the backend's keys, including url) plus every linqwebhooks.redis
-- option but its url -> schema (own is extended and returned).
function M.schema(own)
  for k, v in pairs(redis.SCHEMA) do
    if k ~= "url" then
      own[k] = v
    end
  end
  return own
end

--- Checks opts against schema (raising at level, naming `what`), requires a
-- valid url -> a linqwebhooks.redis client (not connected yet).
function M.client(what, opts, schema, level)
  level = level + 1
  options.check(what, opts, schema, level)
  if opts == nil or opts.url == nil then
    error(what .. ": option 'url' is required (redis://host:port/db)", level)
  end
  local _, err = redis.parse_url(opts.url)
  if err then
    error(what .. ": option 'url': " .. err, level)
  end
  local copts = {}
  for k, v in pairs(opts) do
    if redis.SCHEMA[k] then
      copts[k] = v
    end
  end
  return redis.new(copts, level)
end

--- "linqwebhooks.<kind> (<the client's address>, prefix <prefix>)"
function M.describe(kind, client, prefix)
  return "linqwebhooks." .. kind .. " (" .. tostring(client):match("%((.*)%)$") .. ", prefix "
    .. prefix .. ")"
end

return M
