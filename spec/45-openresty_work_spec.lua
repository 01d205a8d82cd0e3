-- #nginx: linqwebhooks.openresty.work -- the Redis inbox worked inside nginx
-- (init_worker_by_lua_block, timers, cosockets), against a real nginx with
-- 2 workers and a real redis-server on loopback. Handlers record what they
-- saw in a shared dict that the spec reads through /dump.
local nginx = require "support.nginx"
local rs = require "support.redis"
local socket = require "socket"
local linq = require "linqwebhooks"
local inbox_redis = require "linqwebhooks.inbox.redis"

local BUSTED = { setup = setup, teardown = teardown, it = it, pending = pending }

local SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

-- The site: one dispatcher per worker on the Redis inbox; the handler counts
-- each id (count:<id>), the nginx worker that ran it (wid:<n>), and fails
-- the first two attempts of an event whose data asks for it.
local function site_lua(url, prefix, dead_port)
  return [[
local linq = require "linqwebhooks"
local seen = ngx.shared.seen
local M = {}

M.hooks = linq.webhooks{ secret = "]] .. SECRET .. [[",
  inbox = linq.inbox.redis{ url = "]] .. url .. [[", prefix = "]] .. prefix .. [[" } }
M.hooks:on("*", function(ev)
  local tries = seen:incr("tries:" .. ev.id, 1, 0)
  if type(ev.data) == "table" and ev.data.flaky and tries <= 2 then
    error("flaky handler, attempt " .. tries)
  end
  seen:incr("count:" .. ev.id, 1, 0)
  seen:incr("wid:" .. ngx.worker.id(), 1, 0)
  seen:set("phase", ngx.get_phase())
  -- the signal module of hooks:work processes stays out of nginx
  seen:set("process_loaded", tostring(package.loaded["linqwebhooks.process"] ~= nil))
end)

M.plain = linq.webhooks{ secret = "]] .. SECRET .. [[" }

-- an inbox on a port where nothing listens
M.broken = linq.webhooks{ secret = "]] .. SECRET .. [[",
  inbox = linq.inbox.redis{ url = "redis://127.0.0.1:]] .. dead_port .. [[/0", timeout = 1 } }

return M
]]
end

local function conf(url, prefix, work_opts, dead_port)
  return {
    worker_processes = 2,
    listen = "reuseport",
    files = { ["lua/site.lua"] = site_lua(url, prefix, dead_port) },
    http = [[
  lua_shared_dict seen 1m;
  init_worker_by_lua_block {
    local o = require "linqwebhooks.openresty"
    local n = o.work(require("site").hooks, ]] .. work_opts .. [[)
    ngx.shared.seen:incr("started", n, 0)
    ngx.shared.seen:set("pid:" .. ngx.worker.pid(), n)
    if ngx.worker.id() == 0 then
      o.work(require("site").broken, { poll = 0.02, workers = 1 })
    end
  }
]],
    server = [[
    location = /hooks {
      content_by_lua_block { require("linqwebhooks.openresty").serve(require("site").hooks) }
    }
    location = /dump {
      content_by_lua_block {
        local seen = ngx.shared.seen
        for _, k in ipairs(seen:get_keys(0)) do
          ngx.say(k, "=", seen:get(k))
        end
      }
    }
    location = /misuse {
      content_by_lua_block {
        local o = require("linqwebhooks.openresty")
        local site = require "site"
        local _, e1 = pcall(o.work, site.hooks)
        local _, e2 = pcall(o.work, site.plain)
        local _, e3 = pcall(o.work, site.hooks, { pol = 1 })
        local _, e4 = pcall(o.work, site.hooks, { workers = 0 })
        local _, e5 = pcall(o.work, site.hooks, { heartbeat = true })
        ngx.print(e1, "\n", e2, "\n", e3, "\n", e4, "\n", e5)
      }
    }
]],
  }
end

local function event_body(id, data)
  return '{"api_version":"v3","webhook_version":"2026-02-03","event_type":"message.received",'
    .. '"event_id":"' .. id .. '","created_at":"2026-02-05T19:31:13.736444093Z",'
    .. '"trace_id":"t1","partner_id":"p1","data":{"id":"m1","direction":"inbound"'
    .. (data or "") .. '}}'
end

math.randomseed(os.time())
local function new_id(tag, i)
  return "evt-" .. tag .. "-" .. os.time() .. "-" .. i .. "-" .. math.random(1, 1e9)
end

-- The shared dict as a table (from /dump).
local function dump(srv)
  local res = assert(srv:request("GET", "/dump"))
  local t = {}
  for k, v in res.body:gmatch("([^\n=]+)=([^\n]*)") do
    t[k] = v
  end
  return t
end

-- Polls /dump until every id is counted (at most 15 s).
local function wait_handled(srv, ids)
  local d
  local deadline = socket.gettime() + 15
  repeat
    d = dump(srv)
    local all = true
    for _, id in ipairs(ids) do
      if not d["count:" .. id] then
        all = false
        break
      end
    end
    if all then
      return d
    end
    socket.sleep(0.05)
  until socket.gettime() > deadline
  return d
end

-- Sends n signed deliveries (the 5th flaky); -> ids, the flaky id.
local function send(srv, tag, n)
  local ids, flaky = {}, nil
  for i = 1, n do
    local id = new_id(tag, i)
    local data = nil
    if i == 5 then
      data, flaky = ',"flaky":true', id
    end
    local body = event_body(id, data)
    local res = assert(srv:request("POST", "/hooks", linq.sign{ secret = SECRET, body = body }, body))
    assert.are.equal(200, res.status)
    ids[#ids + 1] = id
  end
  return ids, flaky
end

-- the error lines of the site's second loop, on an unreachable inbox
-- (and nginx's own line for each refused cosocket connect: lua_socket_log_errors)
local BROKEN = { "linqwebhooks: openresty%.work: redis: ",
  "connect%(%) failed %(111: Connection refused%), context: ngx%.timer" }

-- One nginx + one redis-server per describe block.
local function suite(tag, work_opts)
  local state = {}
  local site = nginx.suite(BUSTED, function()
    state.redis = rs.start()
    state.prefix = "linqwh-" .. tag .. "-" .. os.time() .. ":"
    return conf(state.redis.url, state.prefix, work_opts, require("support.util").free_port())
  end)
  teardown(function()
    if state.redis then
      state.redis:destroy()
    end
  end)
  state.site = site
  function state.inbox()
    return inbox_redis.new{ url = state.redis.url, prefix = state.prefix }
  end
  return state
end

describe("linqwebhooks.openresty.work #nginx #redis", function()
  local st = suite("all", "{ poll = 0.05, backoff = 0.05 }")

  st.site.it("works the inbox in every nginx worker: each delivery handled once", function()
    local srv = st.site.srv
    local ids, flaky = send(srv, "all", 20)
    local d = wait_handled(srv, ids)
    assert.are.equal("2", d.started) -- one loop per worker
    for _, id in ipairs(ids) do
      assert.are.equal("1", d["count:" .. id], id)
    end
    -- the flaky one: two failed attempts, handled on the third
    assert.are.equal("3", d["tries:" .. flaky])
    assert.are.equal("timer", d.phase)
    assert.are.equal("false", d.process_loaded)
    local s
    local deadline = socket.gettime() + 5
    repeat -- the last ack lands just after the handler's count
      s = assert(st.inbox():stats())
      if s.done >= 20 then
        break
      end
      socket.sleep(0.05)
    until socket.gettime() > deadline
    assert.are.same({ pending = 0, in_flight = 0, done = 20, dead = 0 },
      { pending = s.pending, in_flight = s.in_flight, done = s.done, dead = s.dead })
    assert.are.same({}, srv:errors(BROKEN))
  end)

  st.site.it("raises outside init_worker_by_lua*, without an inbox, on bad options", function()
    local res = assert(st.site.srv:request("GET", "/misuse"))
    assert.are.equal(200, res.status)
    local lines = {}
    for l in res.body:gmatch("[^\n]+") do
      lines[#lines + 1] = l
    end
    assert.matches("openresty.work: call it from init_worker_by_lua* (current phase: content)",
      lines[1], 1, true)
    assert.matches("openresty.work: this dispatcher has no inbox", lines[2], 1, true)
    assert.matches("openresty.work: unknown option 'pol'", lines[3], 1, true)
    assert.matches("openresty.work: option 'workers'", lines[4], 1, true)
    assert.matches("openresty.work: option 'heartbeat' cannot be true inside nginx", lines[5], 1,
      true)
  end)

  st.site.it("stops with the old workers on reload (HUP); the new workers take over", function()
    local srv = st.site.srv
    local old = {}
    for k in pairs(dump(srv)) do
      local pid = k:match("^pid:(%d+)$")
      if pid then
        old[#old + 1] = pid
      end
    end
    assert.are.equal(2, #old)
    assert(os.execute("kill -HUP " .. srv.pid))
    local d
    local deadline = socket.gettime() + 10
    repeat
      socket.sleep(0.05)
      d = dump(srv)
    until d.started == "4" or socket.gettime() > deadline
    assert.are.equal("4", d.started)
    -- the old workers exit (their loops stop on ngx.worker.exiting())
    local gone
    deadline = socket.gettime() + 10
    repeat
      gone = true
      for _, pid in ipairs(old) do
        local a = os.execute("kill -0 " .. pid .. " 2>/dev/null")
        if a == true or a == 0 then
          gone = false
        end
      end
      if not gone then
        socket.sleep(0.05)
      end
    until gone or socket.gettime() > deadline
    assert.is_true(gone, "the old nginx workers did not exit")
    local ids = send(srv, "reload", 3)
    d = wait_handled(srv, ids)
    for _, id in ipairs(ids) do
      assert.are.equal("1", d["count:" .. id], id)
    end
  end)

  st.site.it("logs an unreachable inbox at ngx.ERR, the same message at most once a minute",
    function()
      local srv = st.site.srv
      srv:wait_log("linqwebhooks: openresty.work: redis: ", true)
      socket.sleep(0.5) -- 25 more failed polls
      local text = srv:log()
      local n = 0
      for line in text:gmatch("[^\n]+") do
        if line:find("[error]", 1, true) and line:find("openresty.work: redis: ", 1, true) then
          n = n + 1
        end
      end
      -- once per loop (one before the HUP of the case above, one after)
      assert.is_true(n >= 1 and n <= 2, text)
    end)

  it("raises outside nginx", function()
    local hooks = linq.webhooks{ secret = SECRET }
    assert.has_error(function() require("linqwebhooks.openresty").work(hooks) end,
      "openresty.work: must run inside OpenResty/nginx (init_worker_by_lua*)")
  end)
end)

describe("linqwebhooks.openresty.work{ workers = 1 } #nginx #redis", function()
  local st = suite("one", "{ poll = 0.05, backoff = 0.05, workers = 1 }")

  st.site.it("works the inbox in nginx worker 0 only", function()
    local srv = st.site.srv
    local ids = send(srv, "one", 10)
    local d = wait_handled(srv, ids)
    assert.are.equal("1", d.started)
    for _, id in ipairs(ids) do
      assert.are.equal("1", d["count:" .. id], id)
    end
    assert.are.equal("10", d["wid:0"])
    assert.is_nil(d["wid:1"])
    assert.are.same({}, srv:errors(BROKEN))
  end)
end)
