--- Load test of the OpenResty integration (issue 14): wrk on loopback against
-- one nginx with ONE worker process, every request a distinct validly signed
-- delivery of the 1162-byte bench/message_received.json sample carrying both
-- header sets (bench/nginx/deliveries.lua). Locations, measured in the same
-- run, interleaved round by round (best of the rounds for each):
--   /body       baseline: a content handler that reads the body, answers "ok"
--   /serve      openresty.serve(hooks), dedupe = false, one empty "*" handler
--   /shdict     the same with de-duplication in a lua_shared_dict
--   /redis      the same with linq.store.redis (when that module exists and
--               redis-server is installed: a private one on a free port)
--   /text       serve, dedupe = false, a handler reading event:text()
--   /manual     hand-written: luaossl HMAC-SHA256 (the `lua-luaossl` Debian
--               package) + ngx.encode_base64 + lua-cjson decode + the text
--               parts, headers from ngx.req.get_headers() (when installed)
-- Each as requests/s, ratio to the baseline, latency, and nginx worker CPU
-- per request (a load-independent cost: the machine is shared).
--
--   make luajit && eval "$(make -s env)" && lua5.4 bench/nginx.lua [seconds] [rounds] [connections]
-- Targets (issue 14): /serve >= 0.70 of /body; /text >= 1.25 x /manual.
local root = (debug.getinfo(1, "S").source:match("^@(.*)/bench/[^/]+$")) or "."
package.path = root .. "/spec/?.lua;" .. package.path

local nginx = require "support.nginx"
local socket = require "socket"
local ROOT = nginx.ROOT

local duration = tonumber(arg[1]) or 4
local rounds = tonumber(arg[2]) or 3
local connections = tonumber(arg[3]) or 32
local SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

local ok, why = nginx.available()
if not ok then
  io.stderr:write("bench/nginx.lua: skipped (", tostring(why), ")\n")
  os.exit(0)
end
if not os.execute("command -v wrk >/dev/null 2>&1") then
  io.stderr:write("bench/nginx.lua: skipped (wrk not installed)\n")
  os.exit(0)
end

-- optional rows ------------------------------------------------------------
local function have_lua51_module(name)
  return os.execute("luajit -e 'require(\"" .. name .. "\")' >/dev/null 2>&1")
end
local have_luaossl = have_lua51_module("openssl.hmac") and have_lua51_module("cjson")
local have_redis_store = pcall(require, "linqwebhooks.store.redis")
local redis_port, redis_dir
if have_redis_store and os.execute("command -v redis-server >/dev/null 2>&1") then
  redis_port = nginx.free_port()
  local p = io.popen("mktemp -d /tmp/linqwh-bench-redis.XXXXXX")
  redis_dir = p:read("*l")
  p:close()
  os.execute(string.format("redis-server --port %d --bind 127.0.0.1 --save '' --appendonly no"
    .. " --daemonize yes --pidfile %s/redis.pid --dir %s --logfile %s/redis.log", redis_port,
    redis_dir, redis_dir, redis_dir))
  socket.sleep(0.3)
end

local SITE = [[
local linq = require "linqwebhooks"
local openresty = require "linqwebhooks.openresty"
local M = {}
local SECRET = "]] .. SECRET .. [["

local function empty() end
local function text(ev)
  local t = ev:text()
  if type(t) ~= "string" then error("no text") end
end

M.plain = linq.webhooks{ secret = SECRET, dedupe = false }:on("*", empty)
M.shdict = linq.webhooks{ secret = SECRET, dedupe = linq.store.shdict(ngx.shared.linq_dedupe) }
  :on("*", empty)
M.text = linq.webhooks{ secret = SECRET, dedupe = false }:on("*", text)

local redis_hooks
function M.redis()
  if not redis_hooks then
    redis_hooks = linq.webhooks{ secret = SECRET,
      dedupe = linq.store.redis{ url = "redis://127.0.0.1:" .. ]] .. tostring(redis_port or 0) .. [[ } }
      :on("*", empty)
  end
  return redis_hooks
end

-- The hand-written handler a user writes in an afternoon: luaossl HMAC,
-- lua-cjson, the same checks (timestamp window, v1 entries) and text parts.
local ok_ossl, hmac = pcall(require, "openssl.hmac")
local ok_cjson, cjson = pcall(require, "cjson.safe")
local KEY = ngx.decode_base64(SECRET:sub(7))
function M.manual()
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  local h = ngx.req.get_headers()
  local id, ts, sig = h["webhook-id"], h["webhook-timestamp"], h["webhook-signature"]
  if type(id) ~= "string" or type(ts) ~= "string" or type(sig) ~= "string" or not body then
    ngx.status = 401
    return ngx.print("bad headers")
  end
  local t = tonumber(ts)
  if not t or math.abs(ngx.time() - t) > 300 then
    ngx.status = 401
    return ngx.print("bad timestamp")
  end
  local want = "v1," .. ngx.encode_base64(hmac.new(KEY, "sha256"):final(id .. "." .. ts .. "." .. body))
  local good = false
  for entry in sig:gmatch("%S+") do
    if entry == want then good = true end
  end
  if not good then
    ngx.status = 401
    return ngx.print("bad signature")
  end
  local doc = cjson.decode(body)
  if type(doc) ~= "table" or type(doc.event_type) ~= "string" then
    ngx.status = 400
    return ngx.print("bad json")
  end
  local d = doc.data
  local parts = type(d) == "table" and (d.parts or (type(d.message) == "table" and d.message.parts))
  local out = {}
  if type(parts) == "table" then
    for i = 1, #parts do
      local p = parts[i]
      if type(p) == "table" and p.type == "text" and type(p.value) == "string" then
        out[#out + 1] = p.value
      end
    end
  end
  if table.concat(out, "\n") == "" then error("no text") end
  ngx.print("ok")
end
M.have_manual = ok_ossl and ok_cjson
return M
]]

-- With two or more CPUs, nginx's one worker runs on CPU 0 and wrk on CPU 1,
-- so that the load generator (which signs every request) does not take
-- time from the worker it measures.
local nproc = io.popen("nproc 2>/dev/null")
local ncpu = tonumber(nproc:read("*l") or "") or 1
nproc:close()
local pin = ncpu >= 2 and os.execute("command -v taskset >/dev/null 2>&1")
local srv = nginx.start{
  worker_processes = 1,
  main = pin and "worker_cpu_affinity 01;\n" or nil,
  files = { ["lua/site.lua"] = SITE },
  http = "  lua_shared_dict linq_dedupe 20m;\n",
  server = [[
    location = /body {
      content_by_lua_block {
        ngx.req.read_body()
        local b = ngx.req.get_body_data()
        if not b then error("no body") end
        ngx.print("ok")
      }
    }
    location = /serve { content_by_lua_block { require("linqwebhooks.openresty").serve(require("site").plain) } }
    location = /shdict { content_by_lua_block { require("linqwebhooks.openresty").serve(require("site").shdict) } }
    location = /redis { content_by_lua_block { require("linqwebhooks.openresty").serve(require("site").redis()) } }
    location = /text { content_by_lua_block { require("linqwebhooks.openresty").serve(require("site").text) } }
    location = /manual { content_by_lua_block { require("site").manual() } }
]],
}

local worker
for _ = 1, 200 do
  local p = io.popen("pgrep -P " .. tostring(srv.pid or 0))
  worker = tonumber(p:read("*l") or "")
  p:close()
  if worker then
    break
  end
  socket.sleep(0.05)
end

-- CPU time (user + system, seconds) used so far by the nginx worker.
local function nginx_cpu()
  local f = worker and io.open("/proc/" .. worker .. "/stat", "r")
  if not f then
    return 0
  end
  local st = f:read("*l")
  f:close()
  local fields = {}
  for w in st:match("%)%s+(.*)$"):gmatch("%S+") do
    fields[#fields + 1] = w
  end
  return ((tonumber(fields[12]) or 0) + (tonumber(fields[13]) or 0)) / 100 -- USER_HZ
end

local function wrk(path, seconds)
  local cpu0 = nginx_cpu()
  local cmd = string.format("LINQWH_ROOT='%s' LINQWH_BENCH_SECRET='%s' " .. (pin and "taskset -c 1 " or "")
    .. "wrk -t1 -c%d -d%ds --latency"
    .. " -s '%s/bench/nginx/deliveries.lua' '%s' 2>&1", ROOT, SECRET, connections, seconds, ROOT,
    srv.url .. path)
  local p = assert(io.popen(cmd))
  local out = p:read("*a")
  p:close()
  local cpu = nginx_cpu() - cpu0
  local reqs = tonumber(out:match("(%d+) requests in"))
  local r = {
    rps = tonumber(out:match("Requests/sec:%s*([%d%.]+)")),
    cpu_us = reqs and reqs > 0 and cpu / reqs * 1e6 or nil,
    non2xx = tonumber(out:match("Non%-2xx or 3xx responses:%s*(%d+)")) or 0,
    bad = tonumber(out:match("linqwh_bad_responses (%d+)")) or 0,
    bytes = tonumber(out:match("linqwh_body_bytes (%d+)")),
  }
  for _, pct in ipairs({ "50", "99" }) do
    local v, unit = out:match("\n%s+" .. pct .. "%%%s+([%d%.]+)(%a+)")
    if v then
      r["p" .. pct] = tonumber(v) * ((unit == "us" and 0.001) or (unit == "s" and 1000) or 1)
    end
  end
  if not r.rps then
    error("bench/nginx.lua: could not parse wrk output:\n" .. out)
  end
  return r
end

local rows = {
  { "/body", "baseline: read the body, answer ok" },
  { "/serve", "openresty.serve, dedupe off, empty \"*\" handler" },
  { "/shdict", "openresty.serve, shared-dict dedupe" },
  { "/redis", "openresty.serve, linq.store.redis dedupe" },
  { "/text", "openresty.serve, dedupe off, event:text()" },
  { "/manual", "hand-written: luaossl HMAC + lua-cjson + text" },
}
local skip = {}
if not (have_redis_store and redis_port) then
  skip["/redis"] = have_redis_store and "redis-server not installed"
    or "linqwebhooks.store.redis not available"
end
if not have_luaossl then
  skip["/manual"] = "needs lua-luaossl and lua-cjson for LuaJIT (apt-get install lua-luaossl lua-cjson)"
end

local okrun, err = pcall(function()
  -- a probe request per row: a row that cannot answer "ok" is skipped
  for _, row in ipairs(rows) do
    if not skip[row[1]] then
      local r = wrk(row[1], 1) -- also the warm-up (JIT, shared dict pages)
      if r.bad > 0 or r.non2xx > 0 then
        skip[row[1]] = "answers were not 200 ok (see the nginx error log)"
      end
    end
  end
  local best, all = {}, {}
  for _ = 1, rounds do
    for _, row in ipairs(rows) do
      local path = row[1]
      if not skip[path] then
        local r = wrk(path, duration)
        all[path] = (all[path] and (all[path] .. " ") or "") .. string.format("%.0f", r.rps)
        if not best[path] or r.rps > best[path].rps then
          best[path] = r
        end
        if r.bad ~= 0 or r.non2xx ~= 0 then
          best[path].wrong = (best[path].wrong or 0) + r.bad + r.non2xx
        end
      end
    end
  end

  local base = best["/body"]
  print(string.format("nginx %s, 1 worker; wrk -t1 -c%d -d%ds on loopback, %d-byte deliveries signed"
    .. " with both header sets, a fresh event id each; best of %d interleaved rounds",
    "(lua-nginx-module)", connections, duration, base.bytes or 0, rounds))
  print(pin and "  nginx's worker pinned to CPU 0, wrk to CPU 1"
    or "  nginx and wrk share the CPUs (one CPU, or no taskset)")
  print(string.format("  %-48s %10s %7s %8s %8s %10s %7s", "", "req/s", "ratio", "p50 ms", "p99 ms",
    "CPU/req", "ratio"))
  for _, row in ipairs(rows) do
    local r = best[row[1]]
    if r then
      print(string.format("  %-48s %10.0f %7.2f %8.3f %8.3f %7.1f us %7.2f", row[2], r.rps,
        r.rps / base.rps, r.p50 or 0, r.p99 or 0, r.cpu_us or 0,
        (base.cpu_us or 0) / (r.cpu_us or 1)))
      if r.wrong then
        print("    WARNING: " .. r.wrong .. " answers were not 200 ok")
      end
    else
      print(string.format("  %-48s  skipped: %s", row[2], skip[row[1]]))
    end
  end
  print("  all rounds, req/s:")
  for _, row in ipairs(rows) do
    if all[row[1]] then
      print(string.format("    %-8s %s", row[1], all[row[1]]))
    end
  end
  local s = best["/serve"]
  print(string.format("  target: serve (dedupe off, empty handler) >= 0.70 x baseline: %.2f %s"
    .. " (CPU-time ratio %.2f)", s.rps / base.rps, s.rps / base.rps >= 0.70 and "met" or "MISSED",
    base.cpu_us / s.cpu_us))
  local t, m = best["/text"], best["/manual"]
  if t and m then
    print(string.format("  target: serve + event:text() >= 1.25 x hand-written: %.2f %s"
      .. " (CPU-time ratio %.2f)", t.rps / m.rps, t.rps / m.rps >= 1.25 and "met" or "MISSED",
      m.cpu_us / t.cpu_us))
  end
end)
srv:stop()
if redis_dir then
  os.execute("kill $(cat " .. redis_dir .. "/redis.pid) 2>/dev/null; rm -rf " .. redis_dir)
end
local errs = srv:errors()
if #errs > 0 then
  print("  nginx error log:\n    " .. table.concat(errs, "\n    "))
end
if not okrun then
  error(err, 0)
end
