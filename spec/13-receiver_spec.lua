local linq = require "linqwebhooks"
local receiver = require "linqwebhooks.receiver"
local socket = require "socket"

local SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw7Jxx2Oll+OE="
local LUA = jit and "luajit" or "lua5.4"

local seq = 0
local function signed(etype, opts)
  opts = opts or {}
  seq = seq + 1
  local body = string.format('{"api_version":"v3","webhook_version":"2026-02-03","event_type":"%s",'
    .. '"event_id":"%s","created_at":"2026-02-05T19:31:13Z","trace_id":"t","partner_id":"p",'
    .. '"data":{"chat_id":"c1"%s}}', etype, opts.id or ("evt_r" .. seq), opts.extra or "")
  return body, linq.sign{ secret = SECRET, body = body, id = "msg_r" .. seq,
                          scheme = opts.scheme or "both" }
end

local function raw_request(path, headers, body, opts)
  opts = opts or {}
  local lines = { (opts.method or "POST") .. " " .. path .. " HTTP/1.1", "Host: 127.0.0.1" }
  local names = {}
  for k in pairs(headers) do
    names[#names + 1] = k
  end
  table.sort(names)
  for _, k in ipairs(names) do
    local v = headers[k]
    if type(v) == "table" then
      for _, x in ipairs(v) do
        lines[#lines + 1] = k .. ": " .. x
      end
    else
      lines[#lines + 1] = k .. ": " .. v
    end
  end
  if body and not opts.no_length then
    lines[#lines + 1] = "Content-Length: " .. (opts.length or #body)
  end
  return table.concat(lines, "\r\n") .. "\r\n\r\n" .. (body or "")
end

local function parse_response(resp)
  local status = tonumber(resp:match("^HTTP/1%.1 (%d%d%d)"))
  local head, body = resp:match("^(.-)\r\n\r\n(.*)$")
  return { status = status, head = head, body = body, raw = resp }
end

-- Sends a whole request, lets the in-process receiver serve it, reads the answer.
local function exchange(r, raw)
  local c = socket.tcp()
  c:settimeout(5)
  assert(c:connect("127.0.0.1", r.port))
  assert(c:send(raw))
  assert.is_true(r:step(5))
  local resp, _, partial = c:receive("*a")
  c:close()
  return parse_response(resp or partial)
end

describe("linqwebhooks.receiver (in process)", function()
  local r, hooks, got
  before_each(function()
    got = {}
    hooks = linq.webhooks{ secret = SECRET }
    hooks:on("*", function(ev) got[#got + 1] = ev end)
    hooks:on("message.failed", function() error("handler fails") end)
    r = assert(receiver.new{ hooks = hooks, port = 0, max_body = 4096, timeout = 2 })
  end)
  after_each(function()
    r:close()
  end)

  it("listens on a free loopback port and reports its url", function()
    assert.is_true(r.port > 0)
    assert.equal("http://127.0.0.1:" .. r.port .. "/webhooks", r.url)
    assert.matches("receiver http://127.0.0.1", tostring(r))
    assert.is_false(r:step(0))
  end)

  it("answers a signed delivery with hooks:handle's status and body", function()
    local body, headers = signed("message.received")
    local res = exchange(r, raw_request("/webhooks", headers, body))
    assert.equal(200, res.status)
    assert.equal("ok", res.body)
    assert.matches("Connection: close", res.head)
    assert.equal(1, #got)
    assert.equal(body, got[1].raw)
    -- the same delivery again is a duplicate
    res = exchange(r, raw_request("/webhooks", headers, body))
    assert.equal(200, res.status)
    assert.equal("duplicate", res.body)
    assert.equal(1, #got)
    assert.equal(2, r.served)
  end)

  it("maps forgeries to 401, undecodable bodies to 400 and handler errors to 500", function()
    local body, headers = signed("message.received")
    local res = exchange(r, raw_request("/webhooks", headers, (body:gsub("c1", "c2"))))
    assert.equal(401, res.status)
    assert.matches("no_matching_signature", res.body)

    local bad = "not json"
    res = exchange(r, raw_request("/webhooks", linq.sign{ secret = SECRET, body = bad }, bad))
    assert.equal(400, res.status)

    body, headers = signed("message.failed")
    res = exchange(r, raw_request("/webhooks", headers, body))
    assert.equal(500, res.status)
    assert.equal("handler failed", res.body)
  end)

  it("reads the raw body exactly, with query strings and odd bytes", function()
    local body, headers = signed("message.received", { extra = ',"text":"a\\r\\nb \\u00e9 \226\130\172"' })
    local res = exchange(r, raw_request("/webhooks?version=2026-02-03", headers, body))
    assert.equal(200, res.status)
    assert.equal(body, got[1].raw)
  end)

  it("keeps header names as sent and verifies whatever their case", function()
    local body, h = signed("message.received", { scheme = "standard" })
    local headers = { ["WEBHOOK-ID"] = h["webhook-id"], ["Webhook-Timestamp"] = h["webhook-timestamp"],
                      ["webhook-Signature"] = h["webhook-signature"] }
    local seen_headers
    local inner = linq.webhooks{ secret = SECRET }
    r:set_hooks({ handle = function(_, b, hd)
      seen_headers = hd
      return inner:handle(b, hd)
    end })
    local res = exchange(r, raw_request("/webhooks", headers, body))
    assert.equal(200, res.status)
    assert.equal(h["webhook-id"], seen_headers["WEBHOOK-ID"])
    assert.equal(h["webhook-timestamp"], seen_headers["Webhook-Timestamp"])
    assert.equal(tostring(#body), seen_headers["Content-Length"])
  end)

  it("passes a repeated header as an array (a repeated signature is rejected)", function()
    local body, h = signed("message.received", { scheme = "standard" })
    h["webhook-signature"] = { h["webhook-signature"], h["webhook-signature"] }
    local res = exchange(r, raw_request("/webhooks", h, body))
    assert.equal(401, res.status)
    assert.matches("invalid_headers", res.body)
  end)

  it("answers 413 to a body over max_body without reading it", function()
    local body = string.rep("x", 5000)
    local res = exchange(r, raw_request("/webhooks", { ["Content-Type"] = "application/json" }, body))
    assert.equal(413, res.status)
    assert.equal(0, #got)
  end)

  it("answers 411 without Content-Length or with chunked bodies", function()
    local res = exchange(r, raw_request("/webhooks", {}, "{}", { no_length = true }))
    assert.equal(411, res.status)
    res = exchange(r, raw_request("/webhooks", { ["Transfer-Encoding"] = "chunked" },
      "2\r\n{}\r\n0\r\n\r\n", { no_length = true }))
    assert.equal(411, res.status)
  end)

  it("answers 400 to a bad Content-Length and malformed heads", function()
    local res = exchange(r, raw_request("/webhooks", {}, "{}", { length = "2x" }))
    assert.equal(400, res.status)
    res = exchange(r, "GARBAGE\r\n\r\n")
    assert.equal(400, res.status)
    res = exchange(r, "POST /webhooks HTTP/1.1\r\nBad Header\r\n\r\n")
    assert.equal(400, res.status)
  end)

  it("answers 404 on other paths and 405 on other methods", function()
    local body, headers = signed("message.received")
    local res = exchange(r, raw_request("/other", headers, body))
    assert.equal(404, res.status)
    res = exchange(r, raw_request("/webhooks", {}, nil, { method = "GET" }))
    assert.equal(405, res.status)
    assert.matches("Allow: POST", res.head)
    assert.equal(0, #got)
  end)

  it("answers 408 when the body does not arrive in time", function()
    local c = socket.tcp()
    c:settimeout(5)
    assert(c:connect("127.0.0.1", r.port))
    c:send("POST /webhooks HTTP/1.1\r\nContent-Length: 10\r\n\r\n{}")
    local t0 = socket.gettime()
    r:step(5)
    local resp = c:receive("*a")
    c:close()
    assert.equal(408, parse_response(resp).status)
    assert.is_true(socket.gettime() - t0 < 4.5)
  end)

  it("answers 503 until it has hooks, and validates its options", function()
    local bare = assert(receiver.new{ port = 0 })
    local body, headers = signed("message.received")
    local res = exchange(bare, raw_request("/webhooks", headers, body))
    assert.equal(503, res.status)
    bare:set_hooks(hooks)
    res = exchange(bare, raw_request("/webhooks", headers, body))
    assert.equal(200, res.status)
    bare:close()
    bare:close()
    assert.has_error(function() bare:step(0) end, "receiver:step: receiver is closed")
    assert.has_error(function() receiver.new{ prot = 1 } end, "linqwebhooks.receiver: unknown option 'prot'")
    assert.has_error(function() receiver.new{ hooks = {} } end)
    assert.has_error(function() receiver.new{ path = "webhooks" } end)
    assert.has_error(function() receiver.new{ port = 70000 } end)
    assert.has_error(function() bare:set_hooks(nil) end)
    -- a port in use is a runtime failure: nil, err
    local again, err = receiver.new{ port = r.port }
    assert.is_nil(again)
    assert.matches("cannot listen", err)
  end)
end)

describe("linqwebhooks.receiver.serve (child process)", function()
  local script = [[
    local linq = require "linqwebhooks"
    local hooks = linq.webhooks{ secret = os.getenv("LWH_TEST_SECRET") }
    hooks:on("*", function(ev) print("handled " .. ev.type .. " " .. ev.id) end)
    assert(require("linqwebhooks.receiver").serve{ hooks = hooks, port = 0, max_body = 2048 })
  ]]
  local proc

  local function start()
    local file = os.tmpname()
    local f = assert(io.open(file, "w"))
    f:write(script)
    f:close()
    -- the child finds the modules where this process found them
    local p = assert(io.popen("LWH_TEST_SECRET='" .. SECRET .. "' LUA_PATH='" .. package.path
      .. "' LUA_CPATH='" .. package.cpath .. "' sh -c 'echo $$; exec " .. LUA .. " " .. file
      .. "' 2>&1"))
    local pid = tonumber(p:read("*l"))
    local line = p:read("*l") or ""
    local url = line:match("listening on (http://%S+)")
    return { p = p, pid = pid, url = url, line = line, file = file }
  end

  local function stop(pr)
    if pr and not pr.stopped then
      pr.stopped = true
      os.execute("kill -TERM " .. pr.pid .. " 2>/dev/null")
      pr.rest = pr.p:read("*a")
      pr.p:close()
      os.remove(pr.file)
    end
  end

  after_each(function()
    stop(proc)
  end)

  it("prints its url, serves deliveries, handles Expect: 100-continue and stops on SIGTERM", function()
    proc = start()
    assert.is_number(proc.pid)
    assert.matches("^linqwebhooks receiver listening on http://127%.0%.0%.1:%d+/webhooks$", proc.line)
    local port = tonumber(proc.url:match(":(%d+)/"))

    local body, headers = signed("message.received", { id = "evt_child" })
    headers["Expect"] = "100-continue"
    local head = raw_request("/webhooks", headers, "")
    head = head:gsub("Content%-Length: 0", "Content-Length: " .. #body)
    local c = socket.tcp()
    c:settimeout(5)
    assert(c:connect("127.0.0.1", port))
    assert(c:send(head))
    local interim = c:receive("*l")
    assert.equal("HTTP/1.1 100 Continue", interim) -- LuaSocket drops the CR
    assert.equal("", c:receive("*l"))
    assert(c:send(body))
    local resp = parse_response(c:receive("*a"))
    c:close()
    assert.equal(200, resp.status)

    -- a too large body, sent whole without waiting: the client still reads 413
    c = socket.tcp()
    c:settimeout(5)
    assert(c:connect("127.0.0.1", port))
    local big = string.rep("y", 3000)
    c:send(raw_request("/webhooks", {}, big))
    resp = parse_response(c:receive("*a"))
    c:close()
    assert.equal(413, resp.status)

    stop(proc)
    assert.matches("handled message.received evt_child", proc.rest)
    assert.matches("POST /webhooks %-> 200 message.received evt_child", proc.rest)
    assert.matches("POST /webhooks %-> 413", proc.rest)
    assert.matches("linqwebhooks receiver stopped", proc.rest)
  end)
end)

-- Runs a Lua script as a child process; returns { p, pid, file, line() }.
local function run_child(script)
  local file = os.tmpname()
  local f = assert(io.open(file, "w"))
  f:write(script)
  f:close()
  local p = assert(io.popen("LWH_TEST_SECRET='" .. SECRET .. "' LUA_PATH='" .. package.path
    .. "' LUA_CPATH='" .. package.cpath .. "' sh -c 'echo $$; exec " .. LUA .. " " .. file
    .. "' 2>&1"))
  local pid = tonumber(p:read("*l"))
  return { p = p, pid = pid, file = file }
end

local function finish_child(c)
  if not c.done then
    c.done = true
    os.execute("kill -KILL " .. c.pid .. " 2>/dev/null")
    c.p:close()
    os.remove(c.file)
  end
end

local function post_signed(port, id)
  local body, headers = signed("message.received", { id = id })
  local c = socket.tcp()
  c:settimeout(5)
  assert(c:connect("127.0.0.1", port))
  assert(c:send(raw_request("/webhooks", headers, body)))
  local resp, _, partial = c:receive("*a")
  c:close()
  return parse_response(resp or partial)
end

describe("linqwebhooks.receiver concurrency", function()
  local child
  after_each(function()
    if child then
      finish_child(child)
    end
  end)

  it("answers a real delivery while slowloris clients hold connections open", function()
    -- timeout = 30: each slow client may hold its connection for 30 s
    child = run_child([[
      local linq = require "linqwebhooks"
      local hooks = linq.webhooks{ secret = os.getenv("LWH_TEST_SECRET") }
      hooks:on("*", function(ev) print("handled " .. ev.id) end)
      assert(require("linqwebhooks.receiver").serve{ hooks = hooks, port = 0, timeout = 30 })
    ]])
    local url = child.p:read("*l"):match("listening on (http://%S+)")
    local port = tonumber(url:match(":(%d+)/"))
    local head = "POST /webhooks HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
    local slow = {}
    for i = 1, 5 do
      local c = socket.tcp()
      c:settimeout(5)
      assert(c:connect("127.0.0.1", port))
      assert(c:send(head:sub(1, 10)))
      slow[i] = c
    end
    -- the real delivery, read without blocking while the slow clients trickle bytes
    local body, headers = signed("message.received", { id = "evt_beside_slowloris" })
    local real = socket.tcp()
    real:settimeout(5)
    assert(real:connect("127.0.0.1", port))
    assert(real:send(raw_request("/webhooks", headers, body)))
    real:settimeout(0)
    local got, pos = "", 11
    local t0 = socket.gettime()
    while socket.gettime() - t0 < 5 do
      for _, c in ipairs(slow) do
        c:send(head:sub(pos, pos))
      end
      pos = pos < #head and pos + 1 or pos
      socket.select({ real }, nil, 0.1)
      local data, err, partial = real:receive("*a")
      got = got .. (data or partial or "")
      if err == "closed" or data then
        break
      end
    end
    real:close()
    local res = parse_response(got)
    assert.equal(200, res.status)
    assert.equal("ok", res.body)
    -- ... answered while every slow client is still waiting for its answer
    for _, c in ipairs(slow) do
      c:settimeout(0)
      local data, err, partial = c:receive("*a")
      assert.equal("timeout", err)
      assert.equal("", data or partial)
      c:close()
    end
  end)

  it("at max_connections, closes the quietest connection so a new client is served", function()
    local hooks = linq.webhooks{ secret = SECRET }
    local r = assert(receiver.new{ hooks = hooks, port = 0, max_connections = 3, timeout = 30 })
    local idle = {}
    for i = 1, 3 do
      idle[i] = socket.tcp()
      idle[i]:settimeout(5)
      assert(idle[i]:connect("127.0.0.1", r.port))
      r:step(0.05)
    end
    local body, headers = signed("message.received")
    local c = socket.tcp()
    c:settimeout(5)
    assert(c:connect("127.0.0.1", r.port))
    assert(c:send(raw_request("/webhooks", headers, body)))
    assert.is_true(r:step(5))
    local res = parse_response(c:receive("*a"))
    c:close()
    assert.equal(200, res.status)
    -- the first idle connection was the one closed
    idle[1]:settimeout(2)
    local _, err = idle[1]:receive("*a") -- EOF or reset, not a timeout
    assert.are_not.equal("timeout", err)
    assert.equal(1, r._server.evicted)
    for _, s in ipairs(idle) do
      s:close()
    end
    r:close()
  end)
end)

describe("linqwebhooks.receiver clock skew", function()
  it("logs an ERROR line with the reason and the measured skew", function()
    local lines = {}
    local hooks = linq.webhooks{ secret = SECRET }
    local r = assert(receiver.new{ hooks = hooks, port = 0, log = function(l) lines[#lines + 1] = l end })
    for _, case in ipairs({ { -1000, "timestamp_too_old", 1 }, { 1000, "timestamp_too_new", -1 } }) do
      lines = {}
      local body = '{"event_type":"message.received","event_id":"e","data":{}}'
      local h = linq.sign{ secret = SECRET, body = body, id = "msg_skew", timestamp = os.time() + case[1] }
      local res = exchange(r, raw_request("/webhooks", h, body))
      assert.equal(401, res.status)
      local err_line
      for _, l in ipairs(lines) do
        if l:match("^ERROR") then
          err_line = l
        end
      end
      assert.is_string(err_line)
      assert.matches(case[2], err_line, 1, true)
      local skew = tonumber(err_line:match("clock skew ([+-]%d+) s"))
      assert.is_number(skew)
      assert.is_true(skew * case[3] >= 998 and skew * case[3] <= 1002, err_line)
    end
    r:close()
  end)

  it("stamps the default log lines with UTC time", function()
    local c = run_child([[
      local linq = require "linqwebhooks"
      local hooks = linq.webhooks{ secret = os.getenv("LWH_TEST_SECRET") }
      assert(require("linqwebhooks.receiver").serve{ hooks = hooks, port = 0 })
    ]])
    local ok, err = pcall(function()
      local url = c.p:read("*l"):match("listening on (http://%S+)")
      local port = tonumber(url:match(":(%d+)/"))
      local body = '{"event_type":"message.received","event_id":"e","data":{}}'
      local h = linq.sign{ secret = SECRET, body = body, id = "msg_skew", timestamp = os.time() - 900 }
      local cl = socket.tcp()
      cl:settimeout(5)
      assert(cl:connect("127.0.0.1", port))
      cl:send(raw_request("/webhooks", h, body))
      cl:receive("*a")
      cl:close()
      assert.equal(200, post_signed(port, "evt_stamp").status)
      os.execute("kill -TERM " .. c.pid)
      local out = c.p:read("*a")
      local stamp = "%[%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ%] "
      assert.matches("\n" .. stamp .. "POST /webhooks %-> 200 message.received evt_stamp", out)
      assert.matches(stamp .. "ERROR webhook rejected: timestamp_too_old %(clock skew %+9%d%d s%)", out)
    end)
    finish_child(c)
    assert(ok, err)
  end)
end)

describe("linqwebhooks.receiver.serve signal state", function()
  it("restores the handlers when serve returns: a second serve works, a later SIGTERM ends the process", function()
    local c = run_child([[
      local socket = require "socket"
      local linq = require "linqwebhooks"
      local receiver = require "linqwebhooks.receiver"
      local hooks = linq.webhooks{ secret = os.getenv("LWH_TEST_SECRET") }
      assert(receiver.serve{ hooks = hooks, port = 0 })
      print("first returned")
      assert(receiver.serve{ hooks = hooks, port = 0 })
      print("second returned")
      io.stdout:flush()
      local t0 = socket.gettime()
      while socket.gettime() - t0 < 10 do socket.sleep(0.05) end
      print("survived SIGTERM")
    ]])
    local ok, err = pcall(function()
      local function until_line(pat)
        while true do
          local l = c.p:read("*l")
          if not l or l:match(pat) then
            return l
          end
        end
      end
      local url = until_line("listening on"):match("listening on (http://%S+)")
      local port = tonumber(url:match(":(%d+)/"))
      assert.equal(200, post_signed(port, "evt_first").status)
      os.execute("kill -TERM " .. c.pid)
      assert.is_string(until_line("^first returned"))
      local line2 = until_line("listening on")
      assert.is_string(line2)
      local port2 = tonumber(line2:match(":(%d+)/"))
      -- the second serve is serving, not returning at once
      assert.equal(200, post_signed(port2, "evt_second").status)
      os.execute("kill -TERM " .. c.pid)
      assert.is_string(until_line("^second returned"))
      -- the default handler is back: this SIGTERM ends the process
      local t0 = socket.gettime()
      os.execute("kill -TERM " .. c.pid)
      local rest = c.p:read("*a")
      assert.is_nil(rest:find("survived SIGTERM", 1, true))
      assert.is_true(socket.gettime() - t0 < 8)
    end)
    finish_child(c)
    assert(ok, err)
  end)
end)

describe("linqwebhooks.receiver request-head limits (linqwebhooks.http_server)", function()
  local r
  before_each(function()
    r = assert(receiver.new{ hooks = linq.webhooks{ secret = SECRET }, port = 0, timeout = 2 })
  end)
  after_each(function()
    r:close()
  end)

  it("answers 414 to a request line over 8 KiB", function()
    local res = exchange(r, "POST /webhooks?" .. string.rep("a", 9000) .. " HTTP/1.1\r\n\r\n")
    assert.equal(414, res.status)
    -- even before the line ends
    res = exchange(r, "POST /webhooks?" .. string.rep("a", 9000))
    assert.equal(414, res.status)
  end)

  it("answers 431 to a header line over 8 KiB, over 100 header lines or a head over 16 KiB", function()
    local res = exchange(r, raw_request("/webhooks", { ["X-Big"] = string.rep("b", 9000) }, "{}"))
    assert.equal(431, res.status)
    local many = {}
    for i = 1, 101 do
      many["X-H" .. i] = "v"
    end
    res = exchange(r, raw_request("/webhooks", many, "{}"))
    assert.equal(431, res.status)
    local big = {}
    for i = 1, 5 do
      big["X-B" .. i] = string.rep("c", 4000)
    end
    res = exchange(r, raw_request("/webhooks", big, "{}"))
    assert.equal(431, res.status)
  end)

  it("answers 400 to conflicting Content-Length headers", function()
    local res = exchange(r, "POST /webhooks HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}")
    assert.equal(400, res.status)
  end)
end)
