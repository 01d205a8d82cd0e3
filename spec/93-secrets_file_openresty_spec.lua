-- #nginx: linq.webhooks{ secrets_file } inside a real nginx (2 workers):
-- every worker picks up a secret added to the file, without a reload.
local nginx = require "support.nginx"
local socket = require "socket"
local linq = require "linqwebhooks"
local sfile = require "linqwebhooks.secrets_file"

local URL = "https://app.example.com/linq"
local S1, S2 = "whsec_" .. ("d"):rep(32), "whsec_" .. ("e"):rep(32)

local n = 0
local function delivery(secret)
  n = n + 1
  local id = "evt-" .. os.time() .. "-" .. n .. "-" .. math.random(1, 1e9)
  local body = '{"api_version":"v3","event_type":"message.received","event_id":"' .. id
    .. '","created_at":"2026-02-05T19:31:13Z","data":{}}'
  local h = linq.sign({ secret = secret, body = body, id = id, scheme = "both" })
  h["Content-Type"] = "application/json"
  return body, h
end

describe("linq.webhooks{ secrets_file } in OpenResty #nginx", function()
  local srv, path

  setup(function()
    assert(nginx.available())
    path = os.tmpname()
    os.remove(path)
    local doc = sfile.empty()
    sfile.add_secret(doc, URL, S1, "sub1")
    assert(sfile.write(path, doc))
    srv = nginx.start{
      worker_processes = 2,
      listen = "reuseport",
      files = { ["lua/site.lua"] = ([[
        local linq = require "linqwebhooks"
        local M = {}
        M.hooks = linq.webhooks{ secrets_file = %q, endpoint = %q }
        M.hooks:on("*", function() end)
        return M
      ]]):format(path, URL) },
      server = [[
    location = /hooks {
      content_by_lua_block { require("linqwebhooks.openresty").serve(require("site").hooks) }
    }
]],
    }
  end)

  teardown(function()
    if srv then
      srv:stop()
    end
    os.remove(path)
  end)

  it("verifies with the file's secrets and follows a rotation in every worker", function()
    for _ = 1, 6 do
      local body, h = delivery(S1)
      assert.equal(200, assert(srv:request("POST", "/hooks", h, body)).status)
      body, h = delivery(S2)
      assert.equal(401, assert(srv:request("POST", "/hooks", h, body)).status)
    end
    assert(sfile.update(path, function(doc) sfile.add_secret(doc, URL, S2, "sub2") end))
    -- within about a second every worker accepts the new key (and still the old one)
    local deadline = socket.gettime() + 6
    local streak = 0
    while streak < 10 and socket.gettime() < deadline do
      local body, h = delivery(S2)
      if assert(srv:request("POST", "/hooks", h, body)).status == 200 then
        streak = streak + 1
      else
        streak = 0
        socket.sleep(0.1)
      end
    end
    assert.equal(10, streak)
    local body, h = delivery(S1)
    assert.equal(200, assert(srv:request("POST", "/hooks", h, body)).status)
    assert.same({}, srv:errors())
  end)
end)
