-- The Redis client: the hiredis C module (connection, formatter, reader) and
-- lua/linqwebhooks/redis.lua (URLs, AUTH, SELECT, TLS, unix sockets,
-- failures), against a real redis-server on loopback.
local redis = require "linqwebhooks.redis"
local rs = require "support.redis"

describe("linqwebhooks.redis C module", function()
  local C = redis.c_module()
  local srv

  setup(function()
    srv = rs.start()
  end)
  teardown(function()
    if srv then
      srv:destroy()
    end
  end)

  it("formats commands and parses replies fed in pieces", function()
    assert.equal("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n12\r\n", C.format("SET", "k", 12))
    assert.equal("*2\r\n$3\r\nGET\r\n$3\r\na\0b\r\n", C.format("GET", "a\0b"))
    local rd = C.reader()
    assert.is_true(rd:feed("+OK\r\n$5\r\nhel"))
    assert.same({ ok = "OK" }, rd:get())
    assert.is_nil(rd:get()) -- the bulk string is not complete yet
    rd:feed("lo\r\n*4\r\n:42\r\n$-1\r\n-ERR inner\r\n*1\r\n$1\r\nx\r\n-WRONGTYPE top\r\n")
    assert.equal("hello", rd:get())
    assert.same({ 42, false, { err = "ERR inner" }, { "x" } }, rd:get())
    local v, err, kind = rd:get()
    assert.is_nil(v)
    assert.equal("WRONGTYPE top", err)
    assert.equal("redis", kind)
    assert.is_nil(rd:get())
  end)

  it("reports a protocol error and stays unusable afterwards", function()
    local rd = C.reader()
    rd:feed("?garbage\r\n")
    local v, err, kind = rd:get()
    assert.is_nil(v)
    assert.equal("protocol", kind)
    assert.matches("protocol error", err)
    assert.is_nil(rd:feed("+OK\r\n"))
    assert.is_nil((rd:get()))
    rd:close()
    rd:close()
    assert.has_error(function() rd:get() end, "redis reader: closed")
  end)

  it("refuses hostile replies with a protocol error, never a crash", function()
    for _, bytes in ipairs({ string.rep("*1\r\n", 20) .. ":1\r\n", ":abc\r\n", "$-5\r\n", "\0\r\n" }) do
      local rd = C.reader()
      rd:feed(bytes)
      local v, err, kind = rd:get()
      assert.is_nil(v)
      assert.equal("protocol", kind, err)
    end
  end)

  it("raises on arguments that are not strings or numbers", function()
    assert.has_error(function() C.format("SET", {}) end)
    assert.has_error(function() C.format() end)
    assert.has_error(function() C.connect("127.0.0.1", 0) end)
    assert.has_error(function() C.connect("127.0.0.1", 6379, -1) end)
  end)

  it("runs commands on a blocking connection; close is idempotent", function()
    local c = assert(C.connect("127.0.0.1", srv.port, 2, 2))
    assert.same({ ok = "PONG" }, c:command("PING"))
    assert.same({ ok = "OK" }, c:command("SET", "c:k", "v"))
    assert.equal("v", c:command("GET", "c:k"))
    assert.equal(false, c:command("GET", "c:absent"))
    assert.equal(1, c:command("DEL", "c:k"))
    local v, err, kind = c:command("INCR", "c:k2", "extra")
    assert.is_nil(v)
    assert.matches("wrong number of arguments", err)
    assert.equal("redis", kind)
    assert.same({ ok = "PONG" }, c:command("PING")) -- still usable
    assert.matches("127.0.0.1:" .. srv.port, tostring(c))
    c:close()
    c:close()
    v, err, kind = c:command("PING")
    assert.is_nil(v)
    assert.equal("io", kind)
    assert.matches("closed", err)
    assert.matches("closed", tostring(c))
  end)

  it("returns nil, err when nothing listens", function()
    local port = require("support.util").free_port()
    local c, err = C.connect("127.0.0.1", port, 1, 1)
    assert.is_nil(c)
    assert.matches("cannot connect to 127.0.0.1:" .. port .. ": Connection refused", err)
  end)

  it("times out a command after the command timeout", function()
    local c = assert(C.connect("127.0.0.1", srv.port, 1, 0.2))
    local v, err, kind = c:command("BLPOP", "c:never", 5)
    assert.is_nil(v)
    assert.equal("io", kind)
    assert.matches("timeout", err)
    c:close()
  end)
end)

describe("linqwebhooks.redis client", function()
  it("parses the url forms", function()
    local c = assert(redis.parse_url("redis://127.0.0.1"))
    assert.same({ "redis", "127.0.0.1", 6379, 0, false }, { c.scheme, c.host, c.port, c.db, c.tls })
    c = assert(redis.parse_url("rediss://alice:p%40ss:w@cache.example:6380/3"))
    assert.same({ "alice", "p@ss:w", 6380, 3, true }, { c.user, c.password, c.port, c.db, c.tls })
    c = assert(redis.parse_url("redis://:only@[::1]:7000/1"))
    assert.same({ "::1", 7000, 1, "only" }, { c.host, c.port, c.db, c.password })
    assert.is_nil(c.user)
    c = assert(redis.parse_url("unix:///run/redis.sock?db=2"))
    assert.same({ "/run/redis.sock", 2 }, { c.path, c.db })
    for _, bad in ipairs({ "http://x", "redis://", "redis://h:99999/0", "unix://rel/path", "nope" }) do
      assert.is_nil((redis.parse_url(bad)), bad)
    end
  end)

  it("checks its options and never echoes the password", function()
    assert.has_error(function() redis.new{ url = "redis://h", tiemout = 1 } end,
      "linqwebhooks.redis: unknown option 'tiemout'")
    assert.has_error(function() redis.new{} end)
    assert.has_error(function() redis.new{ url = "redis://h", timeout = 0 } end)
    local ok, err = pcall(redis.new, { url = "ftp://u:hunter2@h" })
    assert.is_false(ok)
    assert.is_nil(err:find("hunter2", 1, true))
    local r = redis.new{ url = "redis://bob:hunter2@127.0.0.1:1/4" }
    assert.equal("linqwebhooks.redis (redis://bob:***@127.0.0.1:1/4)", tostring(r))
  end)

  describe("with a server", function()
    local srv
    setup(function()
      srv = rs.start{ password = "hunter2-pass", unix = true }
      local admin = srv:client()
      assert(admin:call("ACL", "SETUSER", "app", "on", ">app-secret-9", "~*", "+@all"))
      admin:close()
    end)
    teardown(function()
      if srv then
        srv:destroy()
      end
    end)

    it("AUTHs with a password, SELECTs the db", function()
      local r = assert(redis.connect{ url = srv:url_for{ db = 3 } })
      assert.same({ ok = "OK" }, r:call("SET", "db3", "x"))
      local r0 = srv:client()
      assert.equal(false, r0:call("GET", "db3"))
      assert.same({ ok = "OK" }, r0:call("SELECT", 3))
      assert.equal("x", r0:call("GET", "db3"))
      r:close()
      r0:close()
    end)

    it("fails with nil, err when SELECT fails, before running the command", function()
      local r = redis.new{ url = srv:url_for{ db = 99 } }
      local v, err = r:call("SET", "db99", "x")
      assert.is_nil(v)
      assert.matches("SELECT failed on 127.0.0.1:%d+: ERR DB index is out of range", err)
      local admin = srv:client()
      assert.equal(false, admin:call("GET", "db99"))
      admin:close()
    end)

    it("AUTHs as an ACL user", function()
      local r = assert(redis.connect{ url = srv:url_for{ user = "app", password = "app-secret-9" } })
      assert.equal("app", r:call("ACL", "WHOAMI"))
      r:close()
    end)

    it("fails AUTH with nil, err without the password in it", function()
      for _, o in ipairs({ { password = "wrong-pass-77" }, { user = "app", password = "wrong-pass-77" },
                           { password = false } }) do
        local url = srv:url_for(o)
        local r, err = redis.connect{ url = url }
        assert.is_nil(r)
        assert.is_string(err)
        assert.is_nil(err:find("wrong-pass-77", 1, true))
        assert.is_nil(err:find("hunter2", 1, true))
        local c = redis.new{ url = url }
        assert.is_nil(tostring(c):find("wrong-pass-77", 1, true))
        local v, cerr = c:call("PING")
        assert.is_nil(v)
        assert.is_nil(cerr:find("wrong-pass-77", 1, true))
      end
    end)

    it("connects over a unix socket", function()
      local r = assert(redis.connect{ url = srv:url_for{ scheme = "unix", db = 1 } })
      assert.same({ ok = "OK" }, r:call("SET", "u", "1"))
      assert.equal("1", r:call("GET", "u"))
      r:close()
    end)

    it("runs scripts by sha and reloads them after SCRIPT FLUSH", function()
      local r = srv:client()
      assert.equal(7, r:eval("return tonumber(ARGV[1]) + 1", {}, { 6 }))
      assert(r:call("SCRIPT", "FLUSH"))
      assert.equal(8, r:eval("return tonumber(ARGV[1]) + 1", {}, { 7 }))
      local res = r:pipeline({ { "SET", "p", "1" }, { "INCR", "p" }, { "HGET", "p", "x" } })
      assert.same({ ok = "OK" }, res[1][1])
      assert.equal(2, res[2][1])
      assert.equal("redis", res[3][3])
      r:close()
    end)

    it("returns nil, err while the server is down and reconnects after a restart", function()
      local r = srv:client()
      assert.same({ ok = "OK" }, r:call("SET", "persist", "yes"))
      srv:stop()
      local v, err, kind = r:call("GET", "persist")
      assert.is_nil(v)
      assert.equal("io", kind)
      assert.matches("cannot connect to 127%.0%.0%.1:" .. srv.port .. ": Connection refused", err)
      assert.is_nil(err:find("hunter2", 1, true))
      srv:restart()
      assert.equal("yes", r:call("GET", "persist")) -- AOF replayed
      -- a kept connection the server closed (restart): reconnected on the next call
      local before = r._conn
      srv:restart()
      assert.equal("yes", r:call("GET", "persist"))
      assert.are_not.equal(before, r._conn)
      r:close()
    end)
  end)

  describe("over TLS (rediss://, LuaSocket + LuaSec)", function()
    local srv
    setup(function()
      srv = rs.start{ password = "tls-pass", tls = true }
    end)
    teardown(function()
      if srv then
        srv:destroy()
      end
    end)

    it("verifies the certificate against cafile and runs commands", function()
      local r = assert(redis.connect{ url = srv:url_for{ scheme = "rediss", db = 2 }, cafile = srv.ca })
      assert.same({ ok = "OK" }, r:call("SET", "t", string.rep("x", 100000)))
      assert.equal(100000, #r:call("GET", "t"))
      assert.equal(5, r:eval("return 5", {}))
      r:close()
    end)

    it("refuses an untrusted certificate and a wrong host name", function()
      local r, err = redis.connect{ url = srv:url_for{ scheme = "rediss" },
                                    cafile = "/etc/ssl/certs/ca-certificates.crt" }
      assert.is_nil(r)
      assert.matches("TLS handshake", err)
      r, err = redis.connect{ url = srv:url_for{ scheme = "rediss" }, cafile = srv.ca, server_name = "other.example" }
      assert.is_nil(r)
      assert.matches("does not match", err)
      assert.is_nil(err:find("tls-pass", 1, true))
    end)

    it("returns nil, err when the TLS server is down", function()
      local r = redis.new{ url = srv:url_for{ scheme = "rediss" }, cafile = srv.ca, timeout = 1 }
      assert.same({ ok = "PONG" }, r:call("PING"))
      srv:stop()
      local v, err = r:call("PING")
      assert.is_nil(v)
      assert.is_string(err)
      srv:restart()
      assert.same({ ok = "PONG" }, r:call("PING"))
      r:close()
    end)
  end)
end)
