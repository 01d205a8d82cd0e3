--- Subscriptions held by the emulator, optionally persisted to a JSON file.
-- The file is rewritten after every change: written to a temporary file in
-- the same directory, flushed, then renamed over the old one (atomic on POSIX),
-- so a crash never leaves a half-written state file. The file holds the
-- signing secrets, so it is created owner-only (0600).
local json = require "linqwebhooks.json"
local private_file = require "linqwebhooks.private_file"

local State = {}
State.__index = State

local M = {}

local FORMAT = 1

local is_list = require("linqwebhooks.options").is_list

local function copy_list(t)
  local out = {}
  for i = 1, #t do
    out[i] = t[i]
  end
  return out
end

--- Loads `path` if it exists. Raises on a corrupt file (never silently drops
-- subscriptions).
function M.new(path)
  local self = setmetatable({ path = path, list = {}, by_id = {} }, State)
  if not path then
    return self
  end
  local f = io.open(path, "rb")
  if not f then
    return self
  end
  local text = f:read("*a")
  f:close()
  if text == "" then
    return self
  end
  local doc, err = json.decode(text)
  if type(doc) ~= "table" or type(doc.subscriptions) ~= "table" then
    error("linqwebhooks emulator: state_file " .. path .. " is not a valid state file ("
      .. tostring(err or "no 'subscriptions' array") .. ")", 0)
  end
  for _, s in ipairs(doc.subscriptions) do
    if type(s) ~= "table" or type(s.id) ~= "string" or type(s.target_url) ~= "string"
      or type(s.signing_secret) ~= "string" or not is_list(s.subscribed_events) then
      error("linqwebhooks emulator: state_file " .. path .. " has an invalid subscription entry", 0)
    end
    local phones = s.phone_numbers
    if type(phones) ~= "table" or #phones == 0 then
      phones = nil
    end
    self:add({
      id = s.id,
      target_url = s.target_url,
      subscribed_events = copy_list(s.subscribed_events),
      is_active = s.is_active ~= false,
      created_at = s.created_at,
      updated_at = s.updated_at,
      phone_numbers = phones and copy_list(phones) or nil,
      secret = s.signing_secret,
    })
  end
  return self
end

function State:add(sub)
  self.list[#self.list + 1] = sub
  self.by_id[sub.id] = sub
  return sub
end

function State:get(id)
  return self.by_id[id]
end

function State:remove(id)
  local sub = self.by_id[id]
  if not sub then
    return nil
  end
  self.by_id[id] = nil
  for i, s in ipairs(self.list) do
    if s == sub then
      table.remove(self.list, i)
      break
    end
  end
  return sub
end

function State:find_by_url(url, except_id)
  for _, s in ipairs(self.list) do
    if s.target_url == url and s.id ~= except_id then
      return s
    end
  end
  return nil
end

--- Writes the state file (no-op without one). Returns true or nil, message.
function State:save()
  if not self.path then
    return true
  end
  local subs = {}
  for i, s in ipairs(self.list) do
    subs[i] = {
      id = s.id,
      target_url = s.target_url,
      subscribed_events = json.array(copy_list(s.subscribed_events)),
      is_active = s.is_active,
      created_at = s.created_at,
      updated_at = s.updated_at,
      phone_numbers = s.phone_numbers and json.array(copy_list(s.phone_numbers)) or json.null,
      signing_secret = s.secret,
    }
  end
  local text, err = json.encode({ format = FORMAT, subscriptions = json.array(subs) })
  if not text then
    return nil, "cannot encode state: " .. tostring(err)
  end
  -- The file holds signing secrets: owner-only (before any secret is written).
  local ok, stage, werr = private_file.write(self.path, text, self.path .. ".tmp")
  if not ok then
    return nil, (stage == "chmod" and "cannot make state file private (chmod 0600): "
      or stage == "rename" and "cannot replace state file: "
      or "cannot write state file: ") .. tostring(werr)
  end
  return true
end

return M
