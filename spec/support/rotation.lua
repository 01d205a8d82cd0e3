-- Helpers shared by the rotation specs (spec/92, spec/94): endpoints made
-- with subscriptions:apply against the emulator, and the checks of a
-- finished rotation.
local assert = require "luassert"
local sfile = require "linqwebhooks.secrets_file"
local desired_mod = require "linqwebhooks.subscriptions.desired"

local M = {}

--- A fresh temporary path (the file itself does not exist).
function M.tmpfile()
  local p = os.tmpname()
  os.remove(p)
  return p
end

--- The subscriptions serving endpoint `base` (target_url without the
-- rotation marker), in the API's order.
function M.endpoint_subs(client, base)
  local out = {}
  for _, s in ipairs(assert(client.webhook_subscriptions:list())) do
    if desired_mod.strip_marker(s.target_url) == base then
      out[#out + 1] = s
    end
  end
  return out
end

local n = 0

--- fresh(client, prefix[, events]) -> base, path, old: a new endpoint
-- https://app.example.com/<prefix>-<n> with one subscription (line filter
-- +12025550123), made by apply into a new secrets file at `path`.
function M.fresh(client, prefix, events)
  n = n + 1
  local base = "https://app.example.com/" .. prefix .. "-" .. n .. "?version=2026-02-03"
  local path = M.tmpfile()
  assert(client.webhook_subscriptions:apply({ { target_url = base, phone_numbers = { "+12025550123" },
    subscribed_events = events or { "message.sent", "message.received" } } }, { secrets_file = path }))
  return base, path, M.endpoint_subs(client, base)[1]
end

--- The state after a finished rotation of an endpoint made by fresh: one
-- subscription (new_sub, marker 1, the old settings), no rotation record,
-- the new secret first and the old one still valid. Removes the file.
function M.check_done(client, base, path, old, new_sub)
  local left = M.endpoint_subs(client, base)
  assert.equal(1, #left)
  assert.equal(new_sub.id, left[1].id)
  assert.equal(desired_mod.with_marker(base, 1), left[1].target_url)
  assert.same({ "+12025550123" }, left[1].phone_numbers)
  assert.same({ "message.sent", "message.received" }, left[1].subscribed_events)
  local doc = assert(sfile.read(path))
  local ep = doc.endpoints[base]
  assert.is_nil(ep.rotation)
  assert.equal(new_sub.id, ep.secrets[1].subscription_id)
  assert.equal(old.id, ep.secrets[2].subscription_id)
  -- the receiver's view: the new secret first, the old one still valid
  local v = sfile.verifier({ secrets_file = path, endpoint = left[1].target_url }, {})
  assert.equal(2, v:secret_count())
  os.remove(path)
end

return M
