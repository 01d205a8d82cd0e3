--- Load test of the OpenResty integration: wrk against examples/nginx/nginx.conf
-- (run as shipped, port changed), in one nginx:
--   POST /linq/webhooks : verify + decode + de-duplicate (shared dict) + dispatch
--   POST /healthz       : the same nginx answering a plain `return 200`
-- with the same requests (bench/nginx/deliveries.lua: every request a distinct
-- validly signed delivery of the bench/message_received.json sample).
--
--   make luajit && eval "$(make -s env)" && lua5.4 bench/nginx.lua [seconds] [connections] [rounds]
-- Defaults: 5 s per run, 32 connections, 1 wrk thread, 3 interleaved rounds
-- (plain, linq, plain, linq, ...) after a 1 s warm-up of each; the best run
-- of each kind is reported, which damps interference from other processes
-- on a shared machine. Prints deliveries/s and latency percentiles for both,
-- and the ratio (target >= 70 %).
local root = (debug.getinfo(1, "S").source:match("^@(.*)/bench/[^/]+$")) or "."
package.path = root .. "/spec/?.lua;" .. package.path

local nginx = require "support.nginx"
local ROOT = nginx.ROOT

local duration = tonumber(arg[1]) or 5
local connections = tonumber(arg[2]) or 32
local rounds = tonumber(arg[3]) or 3
local threads = 1
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

-- CPU time (user + system, seconds) used so far by nginx's worker processes:
-- a per-request cost that, unlike throughput, does not depend on what else
-- runs on the machine.
local workers
local function nginx_cpu()
  local total = 0
  for _, pid in ipairs(workers or {}) do
    local f = io.open("/proc/" .. pid .. "/stat", "r")
    if f then
      local st = f:read("*l")
      f:close()
      -- fields after the ")" that ends the command name: utime is the 12th, stime the 13th
      local rest = st:match("%)%s+(.*)$")
      local fields = {}
      for w in rest:gmatch("%S+") do
        fields[#fields + 1] = w
      end
      total = total + (tonumber(fields[12]) or 0) + (tonumber(fields[13]) or 0)
    end
  end
  return total / 100 -- USER_HZ
end

local function wrk(url, seconds)
  local cpu0 = nginx_cpu()
  local cmd = string.format("LINQWH_ROOT='%s' LINQWH_BENCH_SECRET='%s' wrk -t%d -c%d -d%ds --latency"
    .. " -s '%s/bench/nginx/deliveries.lua' '%s' 2>&1", ROOT, SECRET, threads, connections, seconds,
    ROOT, url)
  local p = assert(io.popen(cmd))
  local out = p:read("*a")
  p:close()
  local cpu = nginx_cpu() - cpu0
  local reqs = tonumber(out:match("(%d+) requests in"))
  local r = {
    rps = tonumber(out:match("Requests/sec:%s*([%d%.]+)")),
    cpu_us = reqs and reqs > 0 and cpu / reqs * 1e6 or nil,
    non2xx = tonumber(out:match("Non%-2xx or 3xx responses:%s*(%d+)")) or 0,
    bad = tonumber(out:match("linqwh_bad_responses (%d+)")),
    bytes = tonumber(out:match("linqwh_body_bytes (%d+)")),
    errors = out:match("Socket errors:[^\n]*"),
    raw = out,
  }
  for _, pct in ipairs({ "50", "75", "90", "99" }) do
    local v, unit = out:match("\n%s+" .. pct .. "%%%s+([%d%.]+)(%a+)")
    if v then
      local ms = tonumber(v) * ((unit == "us" and 0.001) or (unit == "s" and 1000) or 1)
      r["p" .. pct] = ms
    end
  end
  if not r.rps then
    error("bench/nginx.lua: could not parse wrk output:\n" .. out)
  end
  return r
end

local srv = nginx.start{ example = true, env = { LINQ_WEBHOOK_SECRET = SECRET } }
-- the worker processes (children of the master), once they are all up
local want
do
  local p = io.popen("nproc")
  want = tonumber(p:read("*l")) or 1 -- worker_processes auto
  p:close()
end
for _ = 1, 200 do
  workers = {}
  local p = io.popen("pgrep -P " .. tostring(srv.pid or 0))
  for line in p:lines() do
    workers[#workers + 1] = tonumber(line)
  end
  p:close()
  if #workers >= want then
    break
  end
  require("socket").sleep(0.05)
end
local okrun, err = pcall(function()
  local plain_url = srv.url .. "/healthz"
  local linq_url = srv.url .. "/linq/webhooks"
  -- warm-up (JIT, connection setup, shared dict pages)
  wrk(plain_url, 1)
  wrk(linq_url, 1)
  local plain, hooks
  local all_plain, all_hooks = {}, {}
  for _ = 1, rounds do
    local p = wrk(plain_url, duration)
    local h = wrk(linq_url, duration)
    all_plain[#all_plain + 1] = string.format("%.0f", p.rps)
    all_hooks[#all_hooks + 1] = string.format("%.0f", h.rps)
    if not plain or p.rps > plain.rps then
      plain = p
    end
    if not hooks or h.rps > hooks.rps then
      hooks = h
    end
    -- a wrong answer in any run invalidates the comparison
    if h.bad ~= 0 or h.non2xx ~= 0 then
      hooks.bad, hooks.non2xx = h.bad, h.non2xx
    end
  end

  print(string.format("nginx + linqwebhooks (examples/nginx), wrk -t%d -c%d -d%ds on loopback,"
    .. " %d-byte signed deliveries, each with a fresh event id; best of %d rounds", threads,
    connections, duration, hooks.bytes or 0, rounds))
  print(string.format("  %-40s %12s %9s %9s %9s %9s %12s", "", "requests/s", "p50 ms", "p75 ms",
    "p90 ms", "p99 ms", "nginx CPU/req"))
  local function row(name, r)
    print(string.format("  %-40s %12.0f %9.3f %9.3f %9.3f %9.3f %9.1f us", name, r.rps, r.p50 or 0,
      r.p75 or 0, r.p90 or 0, r.p99 or 0, r.cpu_us or 0))
  end
  row("plain `return 200` (/healthz)", plain)
  row("verify+dedupe+dispatch (/linq/webhooks)", hooks)
  print("  all rounds, requests/s: plain " .. table.concat(all_plain, " ") .. "; linq "
    .. table.concat(all_hooks, " "))
  local ratio = hooks.rps / plain.rps * 100
  print(string.format("  ratio: %.1f %% of the plain 200 rate (target >= 70 %%)", ratio))
  if plain.cpu_us and hooks.cpu_us then
    print(string.format("  nginx CPU per request: %.1f us plain, %.1f us linq (+%.1f us for"
      .. " verify, JSON, dedupe, dispatch); load-independent capacity ratio %.1f %%", plain.cpu_us,
      hooks.cpu_us, hooks.cpu_us - plain.cpu_us, plain.cpu_us / hooks.cpu_us * 100))
  end
  if hooks.bad ~= 0 or hooks.non2xx ~= 0 or plain.non2xx ~= 0 then
    print(string.format("  WARNING: %d linq answers were not 200 \"ok\" (%d non-2xx); plain non-2xx: %d",
      hooks.bad or -1, hooks.non2xx, plain.non2xx))
  end
  if hooks.errors or plain.errors then
    print("  wrk socket errors: " .. tostring(plain.errors) .. " / " .. tostring(hooks.errors))
  end
end)
srv:stop()
local errs = srv:errors()
if #errs > 0 then
  print("  nginx error log:\n    " .. table.concat(errs, "\n    "))
end
if not okrun then
  error(err, 0)
end
