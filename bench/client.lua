-- bench/client.lua -- ns per client.webhook_subscriptions:retrieve(id) from Lua
-- next to bench/curl_floor.c (the same GETs, same headers, one reused libcurl
-- handle, no JSON), both against nginx on loopback serving a fixed
-- subscription (bench/nginx-client.conf), in the same run, alternating
-- rounds; prints the best ns/op of each and the median per-round ratio.
-- usage: lua5.4 bench/client.lua build/bench/curl_floor
local linq = require "linqwebhooks"
local http = require "linqwebhooks.http"
local process = require "linqwebhooks.process"
local socket = require "socket"

local floor_bin = assert(arg[1], "usage: client.lua PATH_TO_curl_floor")
local NGINX = os.getenv("LINQWH_NGINX") or "/usr/sbin/nginx"
-- many short alternating rounds, best of each: robust against other load
local ITERS = tonumber(os.getenv("LINQWH_BENCH_ITERS") or "") or 3000
local ROUNDS = tonumber(os.getenv("LINQWH_BENCH_ROUNDS") or "") or 15
local ID = "b2c3d4e5-f6a7-8901-bcde-f23456789012"

local function sh(cmd)
  local a, _, c = os.execute(cmd)
  return a == true or a == 0 or (a == nil and c == 0)
end

local read = dofile(((arg and arg[0] or ""):match("^(.*)/[^/]*$") or ".") .. "/util.lua").read_file

local function free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return port
end

-- start nginx in a temp prefix
local p = io.popen("mktemp -d /tmp/linqwh-bench.XXXXXX")
local prefix = p:read("*l")
p:close()
local port = free_port()
local conf = assert(read("bench/nginx-client.conf")):gsub("%%PREFIX%%", prefix):gsub("%%PORT%%", tostring(port))
local f = assert(io.open(prefix .. "/nginx.conf", "wb"))
f:write(conf)
f:close()
assert(sh(NGINX .. " -p " .. prefix .. " -c " .. prefix .. "/nginx.conf"), "nginx did not start")

local function stop()
  local pid = read(prefix .. "/nginx.pid")
  if pid and pid:match("%d+") then
    sh("kill -TERM " .. pid:match("%d+"))
    socket.sleep(0.2)
  end
  sh("rm -rf " .. prefix)
end

local ok, err = pcall(function()
  local deadline = socket.gettime() + 10
  while true do
    local c = socket.tcp()
    c:settimeout(0.2)
    local up = c:connect("127.0.0.1", port)
    c:close()
    if up then
      break
    end
    assert(socket.gettime() < deadline, "nginx did not listen")
    socket.sleep(0.05)
  end

  local base = "http://127.0.0.1:" .. port .. "/api/partner"
  local client = linq.client{ api_key = "bench_key", base_url = base }
  local subs = client.webhook_subscriptions
  for _ = 1, 200 do
    assert(subs:retrieve(ID))
  end
  local sub = assert(subs:retrieve(ID))
  assert(sub.id == ID and #sub.subscribed_events == 5)

  local hdr_args = {}
  for _, h in ipairs({ "User-Agent: " .. client.user_agent, "Accept: application/json",
                       "Authorization: Bearer bench_key" }) do
    hdr_args[#hdr_args + 1] = string.format("%q", h)
  end
  local floor_cmd = string.format("%s %s %d 1 %s", floor_bin,
    base .. "/v3/webhook-subscriptions/" .. ID, ITERS, table.concat(hdr_args, " "))

  -- Each round runs the floor then the client; the figure is the median of
  -- the per-round ratios (a load spike hits one round, not the median).
  local best_lua, best_floor, ratios = math.huge, math.huge, {}
  for _ = 1, ROUNDS do
    local fp = assert(io.popen(floor_cmd))
    local out = fp:read("*a")
    fp:close()
    local ns = tonumber(out:match("floor_ns (%d+)"))
    assert(ns, "curl_floor failed: " .. out)
    if ns < best_floor then
      best_floor = ns
    end
    local t0 = process.now_ns()
    for _ = 1, ITERS do
      subs:retrieve(ID)
    end
    local dt = (process.now_ns() - t0) / ITERS
    if dt < best_lua then
      best_lua = dt
    end
    ratios[#ratios + 1] = dt / ns
  end
  table.sort(ratios)
  local median = ratios[math.floor((#ratios + 1) / 2)]
  client:close()

  local jit = rawget(_G, "jit")
  print(string.format("linqwebhooks %s, %s, libcurl %s, nginx on loopback, %d sequential GETs x %d rounds",
    linq.VERSION, jit and jit.version or _VERSION, http.curl_version, ITERS, ROUNDS))
  print(string.format("%-40s %12s", "operation", "ns/op (best)"))
  print(string.format("%-40s %12.0f", "client.webhook_subscriptions:retrieve", best_lua))
  print(string.format("%-40s %12.0f", "libcurl floor (bench/curl_floor.c)", best_floor))
  print(string.format("%-40s %12.2f   (target <= 1.15; best/best %.2f)", "ratio (median of per-round ratios)",
    median, best_lua / best_floor))
end)
stop()
if not ok then
  error(err, 0)
end
