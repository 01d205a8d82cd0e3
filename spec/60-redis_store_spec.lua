-- linq.store.redis: the de-duplication store interface on a real
-- redis-server (loopback), from plain Lua (several processes) and from
-- nginx workers (cosockets).
local linq = require "linqwebhooks"
local rs = require "support.redis"
local child = require "support.child"
local util = require "support.util"
local socket = require "socket"

describe("linq.store.redis", function()
  local srv, admin

  setup(function()
    srv = rs.start{ password = "store-pw-31" }
    admin = srv:client()
  end)
  teardown(function()
    if admin then
      admin:close()
    end
    if srv then
      srv:destroy()
    end
  end)

  local n = 0
  local function fresh_prefix()
    n = n + 1
    return "t" .. n .. ":"
  end

  it("checks its options", function()
    assert.has_error(function() linq.store.redis{} end,
      "linq.store.redis: option 'url' is required (redis://host:port/db)")
    assert.has_error(function() linq.store.redis{ url = srv.url, tll = 5 } end,
      "linq.store.redis: unknown option 'tll'")
    assert.has_error(function() linq.store.redis{ url = srv.url, lease = 0 } end)
    assert.has_error(function() linq.store.redis{ url = srv.url, prefix = 1 } end)
    local s = linq.store.redis{ url = srv.url }
    assert.has_error(function() s:claim(42) end, "store:claim: argument 'key' must be a string, got number")
    assert.has_error(function() s:touch() end)
  end)

  it("claims atomically, commits, releases and renews leases", function()
    local p = fresh_prefix()
    local s = linq.store.redis{ url = srv.url, prefix = p, ttl = 30, lease = 10 }
    assert.is_true(s:claim("evt_1"))
    assert.equal("in_flight", admin:call("GET", p .. "evt_1"))
    local pttl = admin:call("PTTL", p .. "evt_1")
    assert.is_true(pttl > 9000 and pttl <= 10000)
    assert.same({ false, "in_flight" }, { s:claim("evt_1") })
    assert.is_true(s:touch("evt_1"))
    assert.is_true(s:commit("evt_1"))
    assert.same({ false, "seen" }, { s:claim("evt_1") })
    pttl = admin:call("PTTL", p .. "evt_1")
    assert.is_true(pttl > 29000 and pttl <= 30000)
    assert.is_false(s:touch("evt_1")) -- committed: no claim to renew
    assert.is_true(s:release("evt_1")) -- a release never forgets a seen id
    assert.equal("seen", s:state("evt_1"))

    assert.is_true(s:claim("evt_2"))
    assert.is_true(s:release("evt_2"))
    assert.is_nil(s:state("evt_2"))
    assert.is_false(s:touch("evt_2"))
    assert.is_true(s:claim("evt_2")) -- claimable again after release
    s:close()
  end)

  it("expires claims after the lease and ids after the ttl", function()
    local s = linq.store.redis{ url = srv.url, prefix = fresh_prefix(), ttl = 0.3, lease = 0.2 }
    assert.is_true(s:claim("a"))
    socket.sleep(0.3)
    assert.is_true(s:claim("a")) -- the first claimant died: the lease ran out
    assert.is_true(s:commit("a"))
    assert.same({ false, "seen" }, { s:claim("a") })
    socket.sleep(0.4)
    assert.is_true(s:claim("a"))
  end)

  it("renews a claim with touch so it outlives the lease", function()
    local s = linq.store.redis{ url = srv.url, prefix = fresh_prefix(), lease = 0.3 }
    assert.is_true(s:claim("long"))
    for _ = 1, 3 do
      socket.sleep(0.15)
      assert.is_true(s:touch("long"))
    end
    assert.same({ false, "in_flight" }, { s:claim("long") })
  end)

  it("keeps the password out of tostring and errors", function()
    local s = linq.store.redis{ url = srv.url }
    assert.is_nil(tostring(s):find("store-pw-31", 1, true))
    assert.matches("linqwebhooks.store.redis %(redis://:%*%*%*@127.0.0.1:%d+/0, prefix linqwh:%)", tostring(s))
    local bad = linq.store.redis{ url = srv:url_for{ password = "wrong-pw-55" } }
    local ok, err = bad:claim("x")
    assert.is_nil(ok)
    assert.matches("AUTH failed", err)
    assert.is_nil(err:find("wrong-pw-55", 1, true))
  end)

  it("of concurrent claims from 3 processes, exactly one wins each key", function()
    local p = fresh_prefix()
    local start_at = socket.gettime() + 1.0
    local script = os.tmpname()
    util.write_file(script, [[
      local socket = require "socket"
      local linq = require "linqwebhooks"
      local s = linq.store.redis{ url = ]] .. string.format("%q", srv.url) .. [[, prefix = ]]
        .. string.format("%q", p) .. [[ }
      assert(s:claim("warmup-" .. arg[1]) ~= nil)
      while socket.gettime() < ]] .. start_at .. [[ do socket.sleep(0.002) end
      local won = {}
      for i = 1, 40 do
        local ok, why = s:claim("k" .. i)
        assert(ok ~= nil, why)
        if ok then won[#won + 1] = "k" .. i end
      end
      io.write(table.concat(won, " "), "\n")
    ]])
    local pipes = {}
    for i = 1, 3 do
      pipes[i] = io.popen(child.lua() .. " " .. util.sh_quote(script) .. " " .. i .. " 2>&1")
    end
    local wins = {}
    for i = 1, 3 do
      local out = pipes[i]:read("*a")
      pipes[i]:close()
      for k in out:gmatch("k%d+") do
        wins[k] = (wins[k] or 0) + 1
      end
      assert.is_nil(out:find("lua", 1, true), out)
    end
    os.remove(script)
    for i = 1, 40 do
      assert.equal(1, wins["k" .. i], "k" .. i)
    end
  end)

  it("returns nil, err while Redis is down and works again after a restart", function()
    local p = fresh_prefix()
    local s = linq.store.redis{ url = srv.url, prefix = p, timeout = 1 }
    assert.is_true(s:claim("before"))
    assert.is_true(s:commit("before"))
    srv:stop()
    for _, m in ipairs({ "claim", "commit", "release", "touch" }) do
      local ok, err = s[m](s, "during")
      assert.is_nil(ok, m)
      assert.matches("^redis: ", err)
      assert.is_nil(err:find("store-pw-31", 1, true))
    end
    srv:restart()
    assert.same({ false, "seen" }, { s:claim("before") }) -- AOF kept it
    assert.is_true(s:claim("during"))
    admin:close()
    admin = srv:client()
  end)
end)

describe("linq.store.redis inside nginx (cosockets)", function()
  local nginx = require "support.nginx"
  local srv, ngx_srv

  setup(function()
    srv = rs.start{ password = "ngx-pw-88", tls = true }
    ngx_srv = nginx.start{
      worker_processes = 2,
      main = "env LINQWH_REDIS_URL; env LINQWH_REDISS_URL;",
      env = { LINQWH_REDIS_URL = srv:url_for{ db = 2 }, LINQWH_REDISS_URL = srv:url_for{ scheme = "rediss" } },
      http = [[
        lua_ssl_trusted_certificate ]] .. srv.ca .. [[;
        init_by_lua_block {
          -- built at load time (no connection yet); used in every worker
          local linq = require("linqwebhooks")
          STORE = linq.store.redis{ url = os.getenv("LINQWH_REDIS_URL"), lease = 30 }
          STORE_TLS = linq.store.redis{ url = os.getenv("LINQWH_REDISS_URL"), server_name = "localhost",
                                        prefix = "tls:" }
          INBOX = require("linqwebhooks.inbox.redis").new{ url = os.getenv("LINQWH_REDIS_URL"), prefix = "ngx:" }
          STORE_BAD = linq.store.redis{ url = os.getenv("LINQWH_REDIS_URL"):gsub("ngx%-pw%-88", "bad-pw-13") }
          STORE_DB99 = linq.store.redis{ url = os.getenv("LINQWH_REDIS_URL"):gsub("/2$", "/99"), prefix = "db99:" }
        }
        init_worker_by_lua_block {
          local ok, err = STORE:claim("from-init-worker")
          INIT_RESULT = tostring(ok) .. "|" .. tostring(err)
        }
      ]],
      server = [[
        location /claim {
          content_by_lua_block {
            local op = ngx.var.arg_op or "claim"
            local ok, why = STORE[op](STORE, ngx.var.arg_key)
            ngx.say(tostring(ok), " ", tostring(why), " ", ngx.worker.pid())
          }
        }
        location /init { content_by_lua_block { ngx.say(INIT_RESULT) } }
        location /bad {
          content_by_lua_block {
            local st = ngx.var.arg_db99 and STORE_DB99 or STORE_BAD
            local ok, why = st:claim("x")
            ngx.say(tostring(ok), " ", tostring(why), " ", tostring(st))
          }
        }
        location /tls {
          content_by_lua_block {
            local ok, why = STORE_TLS:claim(ngx.var.arg_key)
            ngx.say(tostring(ok), " ", tostring(why))
          }
        }
        location /put {
          content_by_lua_block {
            local key = ngx.var.arg_key
            local ok, why = INBOX:put{ key = key, id = key, event_type = "message.received",
              body = "{}", headers = { ["webhook-id"] = key }, info = { scheme = "standard" },
              received_at = ngx.now() }
            ngx.say(tostring(ok), " ", tostring(why))
          }
        }
      ]],
    }
  end)
  teardown(function()
    if ngx_srv then
      ngx_srv:stop()
    end
    if srv then
      srv:destroy()
    end
  end)

  it("claims, commits and releases through cosockets with AUTH and SELECT", function()
    local function op(o, key)
      local res = assert(ngx_srv:request("GET", "/claim?op=" .. o .. "&key=" .. key))
      assert.equal(200, res.status)
      return res.body:match("^(%S+) (%S+)")
    end
    assert.same({ "true", "nil" }, { op("claim", "n1") })
    assert.same({ "false", "in_flight" }, { op("claim", "n1") })
    assert.same({ "true", "nil" }, { op("touch", "n1") })
    assert.same({ "true", "nil" }, { op("commit", "n1") })
    assert.same({ "false", "seen" }, { op("claim", "n1") })
    assert.same({ "true", "nil" }, { op("claim", "n2") })
    assert.same({ "true", "nil" }, { op("release", "n2") })
    assert.same({ "true", "nil" }, { op("claim", "n2") })
    local admin = srv:client{ db = 2 }
    assert.equal("seen", admin:call("GET", "linqwh:n1"))
    admin:close()
    assert.same({}, ngx_srv:errors())
  end)

  it("of 20 concurrent claims across the workers exactly one wins", function()
    local results = {}
    local threads = {}
    for i = 1, 20 do
      threads[i] = coroutine.create(function()
        local c = socket.tcp()
        c:settimeout(10)
        assert(c:connect("127.0.0.1", ngx_srv.port))
        c:send("GET /claim?key=race HTTP/1.0\r\nHost: x\r\n\r\n")
        results[i] = c
      end)
      coroutine.resume(threads[i])
    end
    local wins = 0
    for i = 1, 20 do
      local body = results[i]:receive("*a")
      results[i]:close()
      assert.matches("HTTP/1.1 200", body)
      if body:find("\ntrue nil", 1, true) then
        wins = wins + 1
      else
        assert.matches("\nfalse in_flight", body)
      end
    end
    assert.equal(1, wins)
  end)

  it("claims over TLS (rediss://, sslhandshake with lua_ssl_trusted_certificate)", function()
    local res = assert(ngx_srv:request("GET", "/tls?key=t1"))
    assert.equal("true nil\n", res.body)
    res = assert(ngx_srv:request("GET", "/tls?key=t1"))
    assert.equal("false in_flight\n", res.body)
    local admin = srv:client()
    assert.equal("in_flight", admin:call("GET", "tls:t1"))
    admin:close()
  end)

  it("stores inbox deliveries from nginx for workers elsewhere", function()
    for i = 1, 3 do
      local res = assert(ngx_srv:request("GET", "/put?key=nx" .. i))
      assert.equal("true nil\n", res.body)
    end
    local res = assert(ngx_srv:request("GET", "/put?key=nx1"))
    assert.equal("false duplicate\n", res.body)
    local ib = require("linqwebhooks.inbox.redis").new{ url = srv:url_for{ db = 2 }, prefix = "ngx:" }
    for i = 1, 3 do
      local job = assert(ib:take("plain-lua-worker", 30))
      assert.equal("nx" .. i, job.key)
      assert.same({ ["webhook-id"] = "nx" .. i }, job.headers)
      assert.is_true(ib:ack(job))
    end
    ib:close()
  end)

  it("answers nil, err for a wrong password, without the password", function()
    local res = assert(ngx_srv:request("GET", "/bad"))
    assert.matches("^nil redis: AUTH failed on 127.0.0.1:%d+: WRONGPASS", res.body)
    assert.is_nil(res.body:find("bad-pw-13", 1, true))
    assert.matches(":%*%*%*@", res.body)
  end)

  it("answers nil, err when SELECT fails, and runs nothing in another db", function()
    local res = assert(ngx_srv:request("GET", "/bad?db99=1"))
    assert.matches("^nil redis: SELECT failed on 127.0.0.1:%d+: ERR DB index is out of range", res.body)
    local admin = srv:client()
    assert.equal(false, admin:call("GET", "db99:x"))
    admin:close()
  end)

  it("refuses to block in a phase without cosockets", function()
    local res = assert(ngx_srv:request("GET", "/init"))
    assert.matches("^nil|redis: no cosockets in nginx's 'init_worker' phase", res.body)
  end)

  it("answers nil, err when Redis is down", function()
    srv:stop()
    local res = assert(ngx_srv:request("GET", "/claim?key=down"))
    assert.matches("^nil redis: cannot connect to 127.0.0.1:%d+", res.body)
    assert.is_nil(res.body:find("ngx-pw-88", 1, true))
    srv:restart()
    res = assert(ngx_srv:request("GET", "/claim?key=down"))
    assert.matches("^true nil", res.body)
  end)
end)
