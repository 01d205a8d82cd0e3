-- The framework recipes of docs/frameworks.md, run as the docs show them:
-- examples/frameworks/lua_http_server.lua (lua-http, under LuaJIT where
-- Debian packages lua-http), openresty_owned.lua (openresty.process in a
-- handler that owns its response, in a real nginx) and cgi.lua (a CGI
-- program: env + stdin). (That the docs show these files verbatim is checked
-- by spec/05-readme_spec.lua, ```lua file=PATH.) #nginx
local nginx = require "support.nginx"
local child = require "support.child"
local util = require "support.util"
local json = require "linqwebhooks.json"
local linq = require "linqwebhooks"

-- busted's functions, for nginx.suite (one nginx per describe block)
local BUSTED = { setup = setup, teardown = teardown, it = it, pending = pending }

local SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw7Jxx2Oll+OE="
local q = util.sh_quote

local counter = 0
local function delivery(etype)
  counter = counter + 1
  local id = ("evt-%d-%d-%d"):format(os.time(), counter, math.random(1, 1e9))
  local body = '{"api_version":"v3","webhook_version":"2026-02-03","event_type":"'
    .. (etype or "message.received") .. '","event_id":"' .. id .. '",'
    .. '"created_at":"2026-02-05T19:31:13.736444093Z","trace_id":"t1","partner_id":"p1",'
    .. '"data":{"id":"m1","direction":"inbound","chat":{"id":"c1"},'
    .. '"sender_handle":{"handle":"+12025559876","service":"iMessage"},'
    .. '"parts":[{"type":"text","value":"Hello!"}]}}'
  return id, body
end

local function as_list(h, extra)
  local list = {}
  for k, v in pairs(h) do
    list[#list + 1] = { k, v }
  end
  for _, kv in ipairs(extra or {}) do
    list[#list + 1] = kv
  end
  list[#list + 1] = { "Content-Type", "application/json" }
  return list
end

describe("recipe: lua-http server (examples/frameworks/lua_http_server.lua, LuaJIT)", function()
  local pid, port, outfile

  setup(function()
    math.randomseed(os.time())
    assert(os.execute("make -s luajit >/dev/null"))
    outfile = os.tmpname()
    -- as the docs say: no LUA_PATH, luajit, port 0
    local cmd = "env -u LUA_PATH -u LUA_CPATH LINQ_WEBHOOK_SECRET=" .. q(SECRET)
      .. " sh -c 'echo $$; exec timeout 120 luajit examples/frameworks/lua_http_server.lua 0' >"
      .. q(outfile) .. " 2>&1 & "
    assert(os.execute(cmd))
    local deadline = os.time() + 20
    repeat
      local out = util.read_file(outfile) or ""
      pid = tonumber(out:match("^(%d+)\n"))
      port = tonumber(out:match("listening on http://127%.0%.0%.1:(%d+)/webhooks"))
      if not port then
        os.execute("sleep 0.05")
      end
    until port or os.time() > deadline
    assert(port, "lua-http server did not start: " .. tostring(util.read_file(outfile)))
  end)

  teardown(function()
    if pid then
      os.execute("kill " .. pid .. " 2>/dev/null")
    end
    if outfile then
      os.remove(outfile)
    end
  end)

  local function post(body, headers)
    return assert(nginx.http(port, "POST", "/webhooks", headers, body, 10))
  end

  it("verifies and dispatches signed deliveries (both header sets) from lua-http's headers object",
    function()
      for _, scheme in ipairs({ "standard", "legacy" }) do
        local id, body = delivery()
        local res = post(body, as_list(linq.sign { secret = SECRET, body = body, scheme = scheme }))
        assert.equal(200, res.status)
        assert.equal("ok", res.body)
        local out
        for _ = 1, 100 do
          out = util.read_file(outfile)
          if out:find(id, 1, true) then break end
          os.execute("sleep 0.02")
        end
        assert.truthy(out:find('message.received ' .. id .. ' from +12025559876: "Hello!"', 1, true),
          out)
      end
    end)

  it("answers 401 to a tampered body, missing headers and a repeated signature header", function()
    local _, body = delivery()
    local h = linq.sign { secret = SECRET, body = body }
    local res = post(body:gsub("Hello", "Hellp"), as_list(h))
    assert.equal(401, res.status)
    assert.equal("verification failed: no_matching_signature", res.body)
    res = post(body, { { "Content-Type", "application/json" } })
    assert.equal(401, res.status)
    assert.equal("verification failed: missing_headers", res.body)
    local other = linq.sign { secret = "whsec_MDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDA=", body = body }
    res = post(body, as_list(h, { { "webhook-signature", other["webhook-signature"] } }))
    assert.equal(401, res.status)
    assert.equal("verification failed: invalid_headers", res.body)
  end)

  it("answers 404 elsewhere", function()
    local res = assert(nginx.http(port, "GET", "/webhooks", nil, nil, 10))
    assert.equal(404, res.status)
  end)
end)

describe("recipe: OpenResty handler owning its response (openresty.process) #nginx", function()
  local site = nginx.suite(BUSTED, {
    main = "env LINQ_WEBHOOK_SECRET;",
    env = { LINQ_WEBHOOK_SECRET = SECRET },
    files = {
      ["lua/openresty_owned.lua"] = util.read_file("examples/frameworks/openresty_owned.lua"),
    },
    http = "  lua_shared_dict linq_dedupe 1m;",
    server = [[
    location = /linq/webhooks {
      content_by_lua_block { require("openresty_owned").action() }
    }
    location = /raw {
      content_by_lua_block {
        local o = require "linqwebhooks.openresty"
        local linq = require "linqwebhooks"
        local res = o.process(linq.webhooks{ secret = os.getenv("LINQ_WEBHOOK_SECRET"), dedupe = false })
        -- nothing was sent by process: this is the whole response
        ngx.status = 299
        ngx.print("sent=", tostring(ngx.headers_sent), " status=", res.status, " body=", res.body)
      }
    }
    location = /misuse {
      content_by_lua_block {
        local o = require "linqwebhooks.openresty"
        local ok1, e1 = pcall(o.process, nil)
        local hooks = require("linqwebhooks").webhooks{ secret = os.getenv("LINQ_WEBHOOK_SECRET") }
        local ok2, e2 = pcall(o.process, hooks, { quik = 1 })
        ngx.print(tostring(ok1), "|", e1, "\n", tostring(ok2), "|", e2)
      }
    }
]],
  })
  local nginx_it = site.it

  nginx_it("answers with the application's JSON and headers; a retry is a duplicate", function()
    local id, body = delivery()
    local h = as_list(linq.sign { secret = SECRET, body = body })
    local res = assert(site.srv:request("POST", "/linq/webhooks", h, body))
    assert.equal(200, res.status)
    assert.equal("application/json", res.headers["content-type"])
    assert.equal("message.received", res.headers["x-linq-event"])
    local doc = json.decode(res.body)
    assert.is_true(doc.ok)
    assert.is_false(doc.duplicate)
    assert.equal(id, doc.event_id)
    res = assert(site.srv:request("POST", "/linq/webhooks", h, body))
    assert.equal(200, res.status)
    assert.is_true(json.decode(res.body).duplicate)
  end)

  nginx_it("a forgery gets 401 with the reason in the application's body; GET gets 405 + Allow", function()
    local _, body = delivery()
    local h = as_list(linq.sign { secret = SECRET, body = body })
    local res = assert(site.srv:request("POST", "/linq/webhooks", h, body .. " "))
    assert.equal(401, res.status)
    local doc = json.decode(res.body)
    assert.is_false(doc.ok)
    assert.equal("no_matching_signature", doc.error)
    res = assert(site.srv:request("GET", "/linq/webhooks"))
    assert.equal(405, res.status)
    assert.equal("POST", res.headers["allow"])
    assert.equal("application/json", res.headers["content-type"])
    -- 401 logged at warn (the level the example's error_log shows)
    assert.truthy(site.srv:log():find("linqwebhooks: delivery answered 401", 1, true))
  end)

  nginx_it("process writes nothing: the caller's status and body are the whole response", function()
    local _, body = delivery()
    local res = assert(site.srv:request("POST", "/raw", as_list(linq.sign { secret = SECRET, body = body }),
      body))
    assert.equal(299, res.status)
    assert.equal("sent=false status=200 body=ok", res.body)
  end)

  nginx_it("raises on misuse naming openresty.process", function()
    local res = assert(site.srv:request("GET", "/misuse"))
    assert.matches("^false|[^\n]*openresty.process: argument 'hooks' must be a dispatcher", res.body)
    assert.matches("\nfalse|[^\n]*openresty.process: unknown option 'quik'", res.body)
  end)
end)

describe("recipe: CGI program (examples/frameworks/cgi.lua)", function()
  -- env -i: only what a web server would pass (no LUA_PATH: the preamble finds the checkout)
  local function cgi(env, body)
    local path = os.tmpname()
    util.write_file(path, body or "")
    local parts = { "env -i PATH=" .. q(os.getenv("PATH")) }
    for k, v in pairs(env) do
      parts[#parts + 1] = k .. "=" .. q(v)
    end
    local p = assert(io.popen(table.concat(parts, " ") .. " timeout 30 " .. child.interpreter
      .. " examples/frameworks/cgi.lua <" .. q(path) .. " 2>/dev/null"))
    local out = p:read("*a")
    p:close()
    os.remove(path)
    local status = tonumber(out:match("^Status: (%d+)"))
    return status, out:match("\r\n\r\n(.*)$"), out
  end

  local function env_for(body, h)
    local env = { REQUEST_METHOD = "POST", CONTENT_LENGTH = tostring(#body),
                  CONTENT_TYPE = "application/json", LINQ_WEBHOOK_SECRET = SECRET }
    for k, v in pairs(h) do
      env["HTTP_" .. k:upper():gsub("%-", "_")] = v
    end
    return env
  end

  it("verifies a delivery from HTTP_* variables and CONTENT_LENGTH bytes of stdin", function()
    for _, scheme in ipairs({ "standard", "legacy" }) do
      local _, body = delivery()
      local status, rbody, out = cgi(env_for(body, linq.sign { secret = SECRET, body = body,
        scheme = scheme }), body .. "trailing bytes past CONTENT_LENGTH are not read")
      assert.equal(200, status, out)
      assert.equal("ok", rbody)
      assert.matches("^Status: 200 OK\r\nContent%-Type: text/plain; charset=utf%-8\r\n\r\n", out)
    end
  end)

  it("401 for a forgery, 405 for GET, 411 without CONTENT_LENGTH, 400 for a short body", function()
    local _, body = delivery()
    local h = linq.sign { secret = SECRET, body = body }
    local status, rbody = cgi(env_for(body, h), body:gsub("Hello", "Hellp"))
    assert.equal(401, status)
    assert.equal("verification failed: no_matching_signature", rbody)
    local env = env_for(body, h)
    env.REQUEST_METHOD = "GET"
    assert.equal(405, (cgi(env, "")))
    env = env_for(body, h)
    env.CONTENT_LENGTH = nil
    assert.equal(411, (cgi(env, body)))
    env = env_for(body, h)
    env.CONTENT_LENGTH = tostring(#body + 10)
    assert.equal(400, (cgi(env, body)))
  end)
end)
