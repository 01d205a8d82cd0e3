--- linqwebhooks: Linq Partner API v3 webhooks for Lua.
-- Verification, dispatch and subscription management on a C core
-- (`linqwebhooks.core`: OpenSSL, cJSON, libcurl).
local core = require "linqwebhooks.core"
local verifier = require "linqwebhooks.verifier"
local event = require "linqwebhooks.event"
local errors = require "linqwebhooks.errors"

local linq = {
  VERSION = core._VERSION,
  null = core.null,
  EVENT_TYPES = require "linqwebhooks.event_types",
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

--- v:unwrap(body, headers) -> event | nil, err: verify, then decode.
function verifier.Verifier:unwrap(body, headers)
  if self._closed then
    error("verifier:unwrap: the verifier is closed", 2)
  end
  local info, err = self:verify(body, headers)
  if not info then
    return nil, err
  end
  return event.decode(body, info) -- the verification result is the delivery info
end

-- Parts loaded on first use (each lives in its own module).
linq.client = function(opts)
  local c = require("linqwebhooks.client").new(opts, 2)
  return c
end
linq.webhooks = function(opts)
  local h = require("linqwebhooks.webhooks").new(opts, 2)
  return h
end
linq.store = {
  memory = function(opts)
    local s = require("linqwebhooks.store.memory").new(opts, 2)
    return s
  end,
  shdict = function(dict, opts)
    local s = require("linqwebhooks.store.shdict").new(dict, opts, 2)
    return s
  end,
  redis = function(opts)
    local s = require("linqwebhooks.store.redis").new(opts, 2)
    return s
  end,
}

return linq
