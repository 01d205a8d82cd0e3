-- #nginx: linqwebhooks.openresty.serve and linq.store.shdict in a real nginx
-- (worker_processes 2, loopback, `listen ... reuseport` so that separate
-- connections spread over both workers). Handlers record what they saw in a
-- shared dict that the spec reads through /seen.
local nginx = require "support.nginx"
local socket = require "socket"
local linq = require "linqwebhooks"

-- busted's functions, for nginx.suite (one nginx per describe block)
local BUSTED = { setup = setup, teardown = teardown, it = it, pending = pending }

local SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

-- The site: one dispatcher per worker, de-duplicating through a shared dict.
local SITE = [[
local linq = require "linqwebhooks"
local openresty = require "linqwebhooks.openresty"
local seen = ngx.shared.seen
local M = {}

local function record(ev)
  -- (a 70 KB test id would exceed the dict's key limit: counted under its md5)
  seen:incr("count:" .. (#ev.id > 200 and ngx.md5(ev.id) or ev.id), 1, 0)
  seen:set("last", ev.type .. "|" .. #ev.raw .. "|" .. ngx.get_phase())
  local d = ev.data
  if type(d) == "table" and d.sleep then
    ngx.sleep(d.sleep)
  end
  if type(d) == "table" and d.fail then
    error("handler asked to fail")
  end
end

local function on_error(err, ev)
  seen:incr("errors", 1, 0)
  seen:set("last_error", tostring(err.message) .. "|" .. tostring(ev and ev.id))
end

M.hooks = linq.webhooks{ secret = "]] .. SECRET .. [[",
  dedupe = linq.store.shdict(ngx.shared.linq_dedupe, { ttl = 600 }) }
M.hooks:on("*", record):on_error(on_error)

return M
]]

local function event_body(id, data, pad)
  local extra = ""
  if pad then
    extra = ',"blob":"' .. string.rep("x", pad) .. '"'
  end
  return '{"api_version":"v3","webhook_version":"2026-02-03","event_type":"message.received",'
    .. '"event_id":"' .. id .. '","created_at":"2026-02-05T19:31:13.736444093Z",'
    .. '"trace_id":"t1","partner_id":"p1","data":{"id":"m1","direction":"inbound"'
    .. (data or "") .. extra .. '}}'
end

math.randomseed(os.time())
local counter = 0
local function new_id(tag)
  counter = counter + 1
  return "evt-" .. tag .. "-" .. os.time() .. "-" .. counter .. "-" .. math.random(1, 1e9)
end

-- A delivery of a fresh event: its id, body and signature headers.
-- o: data (extra members of data), pad (bytes of filler), scheme (linq.sign's).
local function delivery(tag, o)
  o = o or {}
  local id = new_id(tag)
  local body = event_body(id, o.data, o.pad)
  return id, body, linq.sign{ secret = SECRET, body = body, scheme = o.scheme }
end

describe("linqwebhooks.openresty.serve #nginx", function()
  local site = nginx.suite(BUSTED, {
    worker_processes = 2,
    listen = "reuseport",
    files = { ["lua/site.lua"] = SITE },
    http = [[
  lua_shared_dict linq_dedupe 1m;
  lua_shared_dict seen 1m;
]],
    server = [[
    client_body_buffer_size 16k;
    client_max_body_size 4m;
    header_filter_by_lua_block { ngx.header["X-Worker"] = ngx.worker.pid() }
    location = /hooks {
      content_by_lua_block {
        require("linqwebhooks.openresty").serve(require("site").hooks)
        ngx.shared.seen:set("spilled", ngx.req.get_body_file() and "file" or "memory")
      }
    }
    location = /hooks/noget {
      content_by_lua_block {
        local saved, calls = ngx.req.get_headers, 0
        ngx.req.get_headers = function(...) calls = calls + 1; return saved(...) end
        local ok, res = pcall(require("linqwebhooks.openresty").serve, require("site").hooks)
        ngx.req.get_headers = saved
        if not ok then error(res) end
        ngx.print("|get_headers calls: ", calls)
      }
    }
    location = /hooks/quick {
      content_by_lua_block {
        require("linqwebhooks.openresty").serve(require("site").hooks, { quick_ack = true })
      }
    }
    location = /md5 {
      content_by_lua_block {
        -- the md5 the site counts a long id under: prefix p, then n - #p "L"s
        local p, n = ngx.var.arg_p, tonumber(ngx.var.arg_n)
        ngx.print(ngx.md5(p .. string.rep("L", n - #p)))
      }
    }
    location = /seen {
      content_by_lua_block { ngx.print(tostring(ngx.shared.seen:get(ngx.var.arg_key))) }
    }
    location = /misuse {
      content_by_lua_block {
        local o = require("linqwebhooks.openresty")
        local ok1, e1 = pcall(o.serve, require("site").hooks, { quick_ack = true, quik = 1 })
        local ok2, e2 = pcall(o.serve, nil)
        local S = require("linqwebhooks.store.shdict")
        local ok4, e4 = pcall(S.new, ngx.shared.missing)
        local ok5, e5 = pcall(S.new, ngx.shared.seen, { ttl = -1 })
        ngx.print(tostring(ok1), "|", e1, "\n", tostring(ok2), "|", e2, "\n", tostring(ok4), "|", e4,
          "\n", tostring(ok5), "|", e5)
      }
    }
]],
  })
  local nginx_it = site.it

  local function seen(key)
    local res = assert(site.srv:request("GET", "/seen?key=" .. key))
    return res.body
  end

  local function wait_seen(key, want)
    local v
    for _ = 1, 200 do
      v = seen(key)
      if v == want then
        break
      end
      socket.sleep(0.01)
    end
    return v
  end

  local function post(path, body, headers)
    return assert(site.srv:request("POST", path, headers, body))
  end

  nginx_it("answers 200 to a signed delivery and runs the handler", function()
    local id, body, h = delivery("ok")
    local res = post("/hooks", body, h)
    assert.are.equal(200, res.status)
    assert.are.equal("ok", res.body)
    assert.are.equal("1", seen("count:" .. id))
    assert.are.equal("message.received|" .. #body .. "|content", seen("last"))
    assert.are.equal("memory", seen("spilled"))
  end)

  nginx_it("accepts the legacy signature scheme too", function()
    local id, body, h = delivery("legacy", { scheme = "legacy" })
    local res = post("/hooks", body, h)
    assert.are.equal(200, res.status)
    assert.are.equal("1", seen("count:" .. id))
  end)

  nginx_it("answers 401 to a tampered body, a tampered signature and missing headers", function()
    local id, body, h = delivery("tamper")
    local res = post("/hooks", body:gsub("inbound", "outbound"), h)
    assert.are.equal(401, res.status)
    assert.are.equal("verification failed: no_matching_signature", res.body)
    local bad = {}
    for k, v in pairs(h) do
      bad[k] = v
    end
    local sig = h["webhook-signature"]
    bad["webhook-signature"] = sig:sub(1, 4) .. (sig:sub(5, 5) == "A" and "B" or "A") .. sig:sub(6)
    assert.are.equal(401, post("/hooks", body, bad).status)
    local none = post("/hooks", body, { ["Content-Type"] = "application/json" })
    assert.are.equal(401, none.status)
    assert.are.equal("verification failed: missing_headers", none.body)
    assert.are.equal("nil", seen("count:" .. id))
  end)

  nginx_it("rejects a repeated signature header (ngx.req.get_headers gives an array)", function()
    local id, body, h = delivery("repeat")
    local res = post("/hooks", body, {
      { "webhook-id", h["webhook-id"] },
      { "webhook-timestamp", h["webhook-timestamp"] },
      { "webhook-signature", h["webhook-signature"] },
      { "webhook-signature", h["webhook-signature"] },
    })
    assert.are.equal(401, res.status)
    assert.are.equal("verification failed: invalid_headers", res.body)
    assert.are.equal("nil", seen("count:" .. id))
  end)

  -- issue 14: the signature headers are read from nginx's header list, not
  -- through get_headers(); repetition is still detected
  nginx_it("rejects a signature header repeated in another letter case, and a repeated legacy one",
    function()
    local id, body, h = delivery("repeat-case", { scheme = "both" })
    local res = post("/hooks", body, {
      { "Webhook-Id", h["webhook-id"] },
      { "webhook-timestamp", h["webhook-timestamp"] },
      { "Webhook-Signature", h["webhook-signature"] },
      { "WEBHOOK-SIGNATURE", h["webhook-signature"] },
    })
    assert.are.equal(401, res.status)
    assert.are.equal("verification failed: invalid_headers", res.body)
    local legacy = post("/hooks", body, {
      { "X-Webhook-Timestamp", h["X-Webhook-Timestamp"] },
      { "X-Webhook-Signature", h["X-Webhook-Signature"] },
      { "x-webhook-signature", h["X-Webhook-Signature"] },
    })
    assert.are.equal(401, legacy.status)
    assert.are.equal("verification failed: invalid_headers", legacy.body)
    assert.are.equal("nil", seen("count:" .. id))
  end)

  nginx_it("answers 400 to more than 200 request headers (a hidden repeat cannot slip past)", function()
    local id, body, h = delivery("many")
    local list = {}
    for i = 1, 200 do
      list[#list + 1] = { "x-filler-" .. i, "1" }
    end
    list[#list + 1] = { "webhook-id", h["webhook-id"] }
    list[#list + 1] = { "webhook-timestamp", h["webhook-timestamp"] }
    list[#list + 1] = { "webhook-signature", h["webhook-signature"] }
    local res = post("/hooks", body, list)
    assert.are.equal(400, res.status)
    assert.are.equal("too many request headers", res.body)
    assert.are.equal("nil", seen("count:" .. id))
  end)

  nginx_it("verifies without building the table of every header (ngx.req.get_headers)", function()
    local id, body, h = delivery("noget", { scheme = "both" })
    h["X-Other"] = "x"
    local res = post("/hooks/noget", body, h)
    assert.are.equal(200, res.status)
    assert.are.equal("ok|get_headers calls: 0", res.body)
    assert.are.equal("1", seen("count:" .. id))
  end)

  nginx_it("answers 405 to other methods", function()
    local res = assert(site.srv:request("GET", "/hooks"))
    assert.are.equal(405, res.status)
    assert.are.equal("POST", res.headers["allow"])
  end)

  nginx_it("dispatches a delivery sent again on other connections (both workers) once", function()
    local id, body, h = delivery("dup")
    local workers, n = {}, 0
    local bodies = {}
    for _ = 1, 60 do
      local res = post("/hooks", body, h)
      assert.are.equal(200, res.status)
      bodies[res.body] = (bodies[res.body] or 0) + 1
      if not workers[res.headers["x-worker"]] then
        workers[res.headers["x-worker"]] = true
        n = n + 1
      end
      if n >= 2 and bodies.duplicate and bodies.duplicate >= 3 then
        break
      end
    end
    assert.are.equal(2, n) -- both workers answered this delivery
    assert.are.equal(1, bodies.ok)
    assert.are.equal("1", seen("count:" .. id))
  end)

  nginx_it("lets exactly one of two concurrent copies dispatch; the other gets 503 in flight", function()
    local id, body, h = delivery("race", { data = ',"sleep":1' })
    -- the copies are sent on two connections at once; whichever claims the
    -- id first sleeps in its handler while the other is answered
    local conns = {}
    for i = 1, 2 do
      local c = socket.tcp()
      c:settimeout(10)
      assert(c:connect("127.0.0.1", site.srv.port))
      local head = { "POST /hooks HTTP/1.1", "Host: localhost", "Connection: close",
                     "Content-Length: " .. #body }
      for k, v in pairs(h) do
        head[#head + 1] = k .. ": " .. v
      end
      assert(c:send(table.concat(head, "\r\n") .. "\r\n\r\n" .. body))
      conns[i] = c
    end
    local statuses = {}
    for i = 1, 2 do
      local data = conns[i]:receive("*a")
      conns[i]:close()
      statuses[#statuses + 1] = tonumber(data:match("^HTTP/1%.1 (%d+)"))
    end
    table.sort(statuses)
    assert.are.same({ 200, 503 }, statuses)
    assert.are.equal("1", seen("count:" .. id))
  end)

  nginx_it("verifies a 2 MB body that nginx spilled to a temp file", function()
    local id, body, h = delivery("big", { pad = 2 * 1024 * 1024 })
    local res = post("/hooks", body, h)
    assert.are.equal(200, res.status)
    assert.are.equal("file", seen("spilled"))
    assert.are.equal("1", seen("count:" .. id))
    -- the handler saw the whole body, not a truncated buffer
    assert.are.equal("message.received|" .. #body .. "|content", seen("last"))
    -- a change at the very end of the spilled body is caught
    local tampered = body:sub(1, -3) .. "]}"
    local bad = post("/hooks", tampered, linq.sign{ secret = SECRET, body = body })
    assert.are.equal(401, bad.status)
    assert.are.equal("file", seen("spilled"))
  end)

  nginx_it("answers 500 when a handler raises and dispatches again on the retry", function()
    local id, body, h = delivery("fail", { data = ',"fail":true' })
    local before = tonumber(seen("errors")) or 0
    local res = post("/hooks", body, h)
    assert.are.equal(500, res.status)
    assert.are.equal("handler failed", res.body)
    assert.are.equal(tostring(before + 1), seen("errors"))
    assert.matches("handler asked to fail|" .. id, seen("last_error"), 1, true)
    -- the id was released: Linq's retry runs the handlers again
    assert.are.equal(500, post("/hooks", body, h).status)
    assert.are.equal("2", seen("count:" .. id))
  end)

  nginx_it("quick_ack answers 200 first and runs the handlers in a timer", function()
    local id, body, h = delivery("quick")
    local res = post("/hooks/quick", body, h)
    assert.are.equal(200, res.status)
    assert.are.equal("1", wait_seen("count:" .. id, "1"))
    assert.are.equal("message.received|" .. #body .. "|timer", seen("last"))
    -- a second copy is not dispatched again
    assert.are.equal(200, post("/hooks/quick", body, h).status)
    socket.sleep(0.1)
    assert.are.equal("1", seen("count:" .. id))
    -- forgeries are still refused before answering
    assert.are.equal(401, post("/hooks/quick", body .. " ", h).status)
  end)

  nginx_it("quick_ack sends handler failures to on_error and the error log", function()
    local id, body, h = delivery("quickfail", { data = ',"fail":true' })
    local before = tonumber(seen("errors")) or 0
    local res = post("/hooks/quick", body, h)
    assert.are.equal(200, res.status)
    assert.are.equal(tostring(before + 1), wait_seen("errors", tostring(before + 1)))
    local line = "quick_ack dispatch of event " .. id .. " failed after the 200 answer"
    assert.truthy(site.srv:wait_log(line, true):find(line, 1, true))
  end)

  nginx_it("handles a 70 KB event_id once and recognises its duplicate (hashed store key)", function()
    local id = new_id("long") .. string.rep("L", 70 * 1024)
    local body = event_body(id)
    local h = linq.sign{ secret = SECRET, body = body }
    local res = post("/hooks", body, h)
    assert.are.equal(200, res.status)
    assert.are.equal("ok", res.body)
    local again = post("/hooks", body, h)
    assert.are.equal(200, again.status)
    assert.are.equal("duplicate", again.body)
    assert.are.equal("1", seen("count:" .. assert(site.srv:request("GET", "/md5?s=long&n=" .. #id
      .. "&p=" .. id:sub(1, #id - 70 * 1024))).body))
  end)

  nginx_it("logs a stale or future timestamp at [error] with the measured clock skew", function()
    local id = new_id("old")
    local body = event_body(id)
    local res = post("/hooks", body, linq.sign{ secret = SECRET, body = body,
      timestamp = os.time() - 1000 })
    assert.are.equal(401, res.status)
    assert.are.equal("verification failed: timestamp_too_old", res.body)
    assert.matches("%[error%][^\n]*delivery answered 401 timestamp_too_old: clock skew %+1%d%d%d s",
      site.srv:wait_log("timestamp_too_old: clock skew"))
    local new = post("/hooks", body, linq.sign{ secret = SECRET, body = body,
      timestamp = os.time() + 1000 })
    assert.are.equal(401, new.status)
    assert.matches("%[error%][^\n]*delivery answered 401 timestamp_too_new: clock skew %-1%d%d%d s",
      site.srv:wait_log("timestamp_too_new: clock skew"))
    assert.are.equal("nil", seen("count:" .. id))
  end)

  nginx_it("logs other 401 answers at [warn]", function()
    local body = event_body(new_id("warn401"))
    local res = post("/hooks", body, { ["webhook-id"] = "msg_1", ["webhook-timestamp"] = tostring(os.time()),
      ["webhook-signature"] = "v1,AAAA" })
    assert.are.equal(401, res.status)
    assert.matches("%[warn%][^\n]*delivery answered 401 [^\n]*no_matching_signature",
      site.srv:wait_log("delivery answered 401 [^\n]*no_matching_signature"))
  end)

  nginx_it("raises on misuse: unknown options, no dispatcher, no dict", function()
    local out = assert(site.srv:request("GET", "/misuse")).body
    assert.matches("false|[^\n]*openresty.serve: unknown option 'quik'", out)
    assert.matches("false|[^\n]*openresty.serve: argument 'hooks' must be a dispatcher", out)
    assert.matches("false|[^\n]*linq.store.shdict: argument 'dict' must be an ngx.shared dictionary", out)
    assert.matches("false|[^\n]*linq.store.shdict: option 'ttl' must be a number of seconds > 0", out)
  end)

  nginx_it("leaves no unexpected [error] lines in the error log", function()
    local errs = site.srv:errors({
      "linqwebhooks: delivery answered 500 .*handler asked to fail",
      "linqwebhooks: quick_ack dispatch of event evt%-quickfail",
      "delivery answered 401 timestamp_too_old: clock skew",
      "delivery answered 401 timestamp_too_new: clock skew",
    })
    assert.are.same({}, errs)
  end)
end)

-- A tiny shared dict: it fills up with live claims. Claims must never be
-- evicted (a copy of an event still being handled would dispatch twice):
-- a delivery that finds no room is answered 503 and logged.
local TINY_SITE = [[
local linq = require "linqwebhooks"
local M = {}
M.store = linq.store.shdict(ngx.shared.tiny, { lease = 600 })
M.hooks = linq.webhooks{ secret = "]] .. SECRET .. [[", dedupe = M.store }
M.hooks:on("*", function() ngx.shared.seen:incr("count", 1, 0) end)

-- a handler that outlives its 1 s claim lease (default log: the error log)
M.slow = linq.webhooks{ secret = "]] .. SECRET .. [[",
  dedupe = linq.store.shdict(ngx.shared.roomy, { lease = 1, prefix = "slow:" }) }
M.slow:on("*", function() ngx.sleep(1.2) end)

-- claims keys fill-1, fill-2, ... until the store reports it is full
function M.fill()
  for i = 1, 5000 do
    local ok, err, full = M.store:claim("fill-" .. i)
    if ok == nil then
      return i - 1, tostring(full) .. "|" .. tostring(err)
    end
  end
  return 5000, "never full"
end

-- how many of fill-1 .. fill-n are still live claims
function M.live(n)
  local live = 0
  for i = 1, n do
    if M.store:state("fill-" .. i) == "in_flight" then
      live = live + 1
    end
  end
  return live
end

-- store:touch with a 1 s lease on a roomy dict; two instances stand for two
-- workers. Returns a "|"-joined transcript.
function M.touch()
  local S = require "linqwebhooks.store.shdict"
  local a = S.new(ngx.shared.roomy, { lease = 1 })
  local b = S.new(ngx.shared.roomy, { lease = 1 })
  local key = "t-" .. ngx.now()
  local out = {}
  local function add(v) out[#out + 1] = tostring(v) end
  add(a:claim(key))            -- true
  add(a:touch(key))            -- true: renewed
  add(b:touch(key))            -- false: not b's claim
  ngx.sleep(0.6)
  add(a:touch(key))            -- true: renewed again, 0.6 s in
  ngx.sleep(0.6)
  add(a:state(key))            -- in_flight: 1.2 s after the claim, thanks to the renewal
  ngx.sleep(1.1)
  add(a:touch(key))            -- false: the lease ran out
  add(b:claim(key))            -- true: b (another worker) claims it
  add(a:touch(key))            -- false: b's claim, not a's
  a:release(key)               -- must not drop b's claim
  add(a:state(key))            -- in_flight
  add(b:touch(key))            -- true
  return table.concat(out, "|")
end

return M
]]

describe("linq.store.shdict in a full dictionary #nginx", function()
  local site = nginx.suite(BUSTED, {
    worker_processes = 1,
    files = { ["lua/tiny.lua"] = TINY_SITE },
    http = [[
  lua_shared_dict tiny 12k;
  lua_shared_dict roomy 1m;
  lua_shared_dict seen 1m;
]],
    server = [[
    location = /hooks {
      content_by_lua_block { require("linqwebhooks.openresty").serve(require("tiny").hooks) }
    }
    location = /slow {
      content_by_lua_block { require("linqwebhooks.openresty").serve(require("tiny").slow) }
    }
    location = /fill {
      content_by_lua_block { local n, why = require("tiny").fill() ngx.print(n, "|", why) }
    }
    location = /live {
      content_by_lua_block { ngx.print(require("tiny").live(tonumber(ngx.var.arg_n))) }
    }
    location = /touch {
      content_by_lua_block { ngx.print(require("tiny").touch()) }
    }
    location = /count {
      content_by_lua_block { ngx.print(tostring(ngx.shared.seen:get("count"))) }
    }
]],
  })
  local nginx_it = site.it

  local function get(path)
    return assert(site.srv:request("GET", path)).body
  end

  nginx_it("never evicts a live claim: a delivery finding no room gets 503 and an error log line", function()
    local out = get("/fill")
    local n, rest = out:match("^(%d+)|(.*)$")
    n = tonumber(n)
    assert.truthy(n and n > 0, out)
    assert.matches("^full|shared dict is full", rest)
    local _, body, h = delivery("full")
    local res = assert(site.srv:request("POST", "/hooks", h, body))
    assert.are.equal(503, res.status)
    assert.are.equal("dedupe store full, retry later", res.body)
    assert.are.equal("nil", get("/count"))
    -- every claim made before is still held
    assert.are.equal(tostring(n), get("/live?n=" .. n))
    local line = "%[error%][^\n]*linqwebhooks: cannot claim event evt%-full[^\n]*"
      .. "dedupe store full[^\n]*answered 503"
    local log = site.srv:wait_log(line)
    assert.truthy(log:match(line), log)
  end)

  nginx_it("logs a warning when a handler outran its claim's lease", function()
    local _, body, h = delivery("slow")
    local res = assert(site.srv:request("POST", "/slow", h, body))
    assert.are.equal(200, res.status)
    assert.matches("%[warn%][^\n]*linqwebhooks: handlers of event evt%-slow[^\n]*outran the dedupe"
      .. " store's claim lease", site.srv:log())
  end)

  nginx_it("store:touch renews only the caller's own live claim", function()
    assert.are.equal("true|true|false|true|in_flight|false|true|false|in_flight|true", get("/touch"))
  end)
end)

describe("linqwebhooks.openresty outside nginx", function()
  it("refuses to serve without ngx", function()
    local hooks = linq.webhooks{ secret = SECRET }
    assert.has_error(function() require("linqwebhooks.openresty").serve(hooks) end,
      "openresty.serve: must run inside OpenResty/nginx (content_by_lua*)")
  end)
end)

describe("linq.store.shdict outside nginx", function()
  it("raises without a shared dict", function()
    assert.has_error(function() linq.store.shdict(nil) end,
      "linq.store.shdict: argument 'dict' must be an ngx.shared dictionary (declare it with"
      .. " lua_shared_dict in nginx.conf and pass ngx.shared.NAME), got nil")
  end)
end)
