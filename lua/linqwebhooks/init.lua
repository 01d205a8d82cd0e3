--- linqwebhooks: Linq Partner API v3 webhooks for Lua.
-- Verification, dispatch and subscription management on a C core
-- (`linqwebhooks.core`: OpenSSL, cJSON, libcurl).
local core = require "linqwebhooks.core"
local verifier = require "linqwebhooks.verifier"
local errors = require "linqwebhooks.errors"

local linq = {
  VERSION = core._VERSION,
  null = core.null,
  EVENT_TYPES = require "linqwebhooks.event_types",
  events = require "linqwebhooks.events",
  errors = errors,
}

-- The wrappers below avoid tail calls so that errors raised with a level
-- point at the user's line.
linq.verifier = function(opts)
  local v = verifier.new(opts, 2)
  return v
end
linq.verify = verifier.verify
linq.sign = verifier.sign

-- Parts loaded on first use (each lives in its own module).
linq.client = function(opts)
  local c = require("linqwebhooks.client").new(opts, 2)
  return c
end
linq.webhooks = function(opts)
  local h = require("linqwebhooks.webhooks").new(opts, 2)
  return h
end
-- linq.store.memory / .shdict / .redis, the store interface and store.key
linq.store = require "linqwebhooks.store"

-- The durable inbox backends (lua/linqwebhooks/inbox/), loaded on first use.
linq.inbox = {
  sqlite = function(opts)
    local i, err = require("linqwebhooks.inbox").sqlite(opts, 2)
    return i, err
  end,
  redis = function(opts)
    local i, err = require("linqwebhooks.inbox").redis(opts, 2)
    return i, err
  end,
}

return linq
