--- Subscription objects returned by the client: the response fields plus
-- methods that call the API and update the object in place.
--
-- Fields: id, target_url, subscribed_events, is_active, created_at, updated_at,
-- phone_numbers (nil when the subscription has no line filter), and
-- signing_secret only on the object returned by `create`.
-- `tostring(sub)` never shows the signing secret; the owning client is kept
-- out of the object's fields (so dumping a subscription cannot show the API key).
local M = {}

local Subscription = {} -- methods
M.Subscription = Subscription

local null -- set by M.init

--- Copies the response fields of `doc` into `sub` (JSON null -> nil); the
-- signing secret is never taken from anything but a create response.
local function assign(sub, doc)
  for k, v in pairs(doc) do
    if k ~= "signing_secret" then
      if v == null then
        v = nil
      end
      sub[k] = v
    end
  end
  return sub
end

function M.init(json_null)
  null = json_null
end

-- Each client's subscriptions share one metatable that names their owner
-- (the client's webhook_subscriptions resource), so the object's own fields
-- never reference the client.
local function metatable_for(resource)
  local mt = rawget(resource, "_sub_mt")
  if not mt then
    mt = { __index = Subscription, __tostring = Subscription.__tostring, owner = resource,
           is_subscription = true }
    rawset(resource, "_sub_mt", mt)
  end
  return mt
end

--- Turns a decoded subscription document into a subscription object owned
-- by `resource` (the client's webhook_subscriptions), in place: every
-- response field is kept, JSON nulls of the nullable fields become nil, and
-- signing_secret is dropped unless `with_secret` (create).
function M.adopt(resource, doc, with_secret)
  if not with_secret then
    doc.signing_secret = nil
  end
  if doc.phone_numbers == null then
    doc.phone_numbers = nil
  end
  if doc.routing_id_header == null then
    doc.routing_id_header = nil
  end
  if doc.routing_key_header == null then
    doc.routing_key_header = nil
  end
  return setmetatable(doc, rawget(resource, "_sub_mt") or metatable_for(resource))
end

--- True when v is a subscription object.
function M.is(v)
  local mt = getmetatable(v)
  return type(mt) == "table" and rawget(mt, "is_subscription") == true
end

M.assign = assign

local function owner(self, what)
  local mt = getmetatable(self)
  if type(mt) ~= "table" or rawget(mt, "is_subscription") ~= true then
    error("subscription:" .. what .. ": call it with ':' on a subscription object", 3)
  end
  return rawget(mt, "owner")
end

function Subscription.__tostring(self)
  local ev = type(self.subscribed_events) == "table" and #self.subscribed_events or 0
  return string.format("linqwebhooks.subscription %s %s (%s, %d event type%s)", tostring(self.id),
    tostring(self.target_url), self.is_active == false and "inactive" or "active", ev,
    ev == 1 and "" or "s")
end

--- sub:update(params) -> sub | nil, err
function Subscription:update(params)
  local res = owner(self, "update")
  local doc, err = res:_update(self.id, params, 2)
  if not doc then
    return nil, err
  end
  return assign(self, doc)
end

--- sub:activate() -> sub | nil, err
function Subscription:activate()
  local res = owner(self, "activate")
  local doc, err = res:_update(self.id, { is_active = true }, 2)
  if not doc then
    return nil, err
  end
  return assign(self, doc)
end

--- sub:deactivate() -> sub | nil, err
function Subscription:deactivate()
  local res = owner(self, "deactivate")
  local doc, err = res:_update(self.id, { is_active = false }, 2)
  if not doc then
    return nil, err
  end
  return assign(self, doc)
end

--- sub:refresh() -> sub | nil, err (re-reads the subscription)
function Subscription:refresh()
  local res = owner(self, "refresh")
  local doc, err = res:_retrieve(self.id, 2)
  if not doc then
    return nil, err
  end
  return assign(self, doc)
end

--- sub:delete() -> true | nil, err
function Subscription:delete()
  local res = owner(self, "delete")
  return res:delete(self.id)
end

--- sub:subscribes_to(event_type) -> boolean
function Subscription:subscribes_to(event_type)
  owner(self, "subscribes_to")
  if type(event_type) ~= "string" then
    error("subscription:subscribes_to: argument 'event_type' must be a string, got "
      .. type(event_type), 2)
  end
  for _, e in ipairs(self.subscribed_events or {}) do
    if e == event_type then
      return true
    end
  end
  return false
end

return M
