-- API client over TLS: a local HTTPS endpoint (nginx on loopback) with a
-- self-signed certificate generated at test time is refused by default and
-- accepted with ca_file; the host name is checked (the certificate names
-- only "localhost", so https://127.0.0.1 must fail even with ca_file); HTTP/2 is used when offered.
local socket = require "socket"
local linq = require "linqwebhooks"
local curl = require "linqwebhooks.transport.curl"

local SUB = '{"id":"tls_sub","target_url":"https://example.com/h","subscribed_events":["message.sent"],'
  .. '"is_active":true,"created_at":"x","updated_at":"x","phone_numbers":null}'

local function sh(cmd)
  local a, _, c = os.execute(cmd)
  return a == true or a == 0 or (a == nil and c == 0)
end

local NGINX = os.getenv("LINQWH_NGINX") or "/usr/sbin/nginx"

local read_file = require("support.util").read_file

-- A plain nginx (no modules) in `dir`, on a free loopback port; returns
-- { port, stop() } or raises with the error log.
local function start_nginx(dir, server_block)
  local last
  for _ = 1, 5 do
    local s = assert(socket.bind("127.0.0.1", 0))
    local _, port = s:getsockname()
    s:close()
    local conf = table.concat({
      "master_process off;",
      "daemon on;",
      "pid " .. dir .. "/nginx.pid;",
      "error_log " .. dir .. "/error.log warn;",
      "events { worker_connections 64; }",
      "http {",
      "  access_log off;",
      "  client_body_temp_path " .. dir .. "/client_body;",
      "  server {",
      "    listen 127.0.0.1:" .. port .. " ssl http2;",
      server_block,
      "  }",
      "}",
    }, "\n")
    local f = assert(io.open(dir .. "/nginx.conf", "wb"))
    f:write(conf)
    f:close()
    sh("env -u LD_PRELOAD " .. NGINX .. " -p " .. dir .. " -c " .. dir .. "/nginx.conf >" .. dir .. "/start.log 2>&1")
    local deadline = socket.gettime() + 10
    while socket.gettime() < deadline do
      local pid = read_file(dir .. "/nginx.pid")
      local c = socket.tcp()
      c:settimeout(0.2)
      local up = pid and c:connect("127.0.0.1", port)
      c:close()
      if up then
        pid = pid:match("%d+")
        return { port = port, stop = function()
          sh("kill -TERM " .. pid .. " 2>/dev/null")
          local t = socket.gettime() + 5
          while sh("kill -0 " .. pid .. " 2>/dev/null") and socket.gettime() < t do
            socket.sleep(0.02)
          end
        end }
      end
      if not sh("test -s " .. dir .. "/nginx.pid") and read_file(dir .. "/start.log") ~= "" then
        break
      end
      socket.sleep(0.05)
    end
    last = (read_file(dir .. "/start.log") or "") .. (read_file(dir .. "/error.log") or "")
  end
  error("nginx did not start: " .. tostring(last))
end

local function mktemp_dir()
  local p = io.popen("mktemp -d /tmp/linqwh-tls.XXXXXX")
  local dir = p:read("*l")
  p:close()
  return dir
end

describe("client TLS", function()
  local srv, dir, cert

  setup(function()
    if not sh("test -x " .. NGINX) then
      return
    end
    dir = mktemp_dir()
    cert = dir .. "/cert.pem"
    assert(sh("env -u LD_PRELOAD openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
      .. " -keyout " .. dir .. "/key.pem -out " .. cert .. " -days 2 -subj /CN=localhost"
      .. " -addext subjectAltName=DNS:localhost >" .. dir .. "/openssl.log 2>&1"),
      "openssl failed")
    srv = start_nginx(dir, table.concat({
      "    ssl_certificate " .. cert .. ";",
      "    ssl_certificate_key " .. dir .. "/key.pem;",
      "    location / { default_type application/json; return 200 '" .. SUB .. "'; }",
    }, "\n"))
  end)

  teardown(function()
    if srv then
      srv.stop()
    end
    if dir then
      sh("rm -rf " .. dir)
    end
  end)

  local function need()
    if not srv then
      pending("nginx not available")
      return false
    end
    return true
  end

  it("refuses a self-signed certificate by default, without retrying", function()
    if not need() then return end
    local c = linq.client{ api_key = "k_tls", base_url = "https://localhost:" .. srv.port .. "/api/partner" }
    local sub, err = c.webhook_subscriptions:retrieve("tls_sub")
    c:close()
    assert.is_nil(sub)
    assert.equal("connection", err.kind)
    assert.equal("APIConnectionError", err.name)
    assert.matches("[Cc]ertificate", err.message)
    assert.equal(1, err.attempts)
  end)

  it("accepts it with ca_file, over HTTP/2", function()
    if not need() then return end
    local c = linq.client{ api_key = "k_tls", base_url = "https://localhost:" .. srv.port .. "/api/partner",
                           ca_file = cert }
    local sub, err = c.webhook_subscriptions:retrieve("tls_sub")
    assert.is_nil(err)
    assert.equal("tls_sub", sub.id)
    -- the handle is reused: a second call works on the same connection
    assert.equal("tls_sub", assert(c.webhook_subscriptions:retrieve("tls_sub")).id)
    c:close()
    local t = curl.new{ ca_file = cert, timeout = 5 }
    local res = assert(t:request("GET", "https://localhost:" .. srv.port .. "/x", {}))
    t:close()
    assert.equal(200, res.status)
    assert.equal(2, res.http_version)
  end)

  it("checks the host name even with a trusted certificate", function()
    if not need() then return end
    local t = curl.new{ ca_file = cert, timeout = 5 }
    -- the certificate names only "localhost"
    local res, kind, msg = t:request("GET", "https://127.0.0.1:" .. srv.port .. "/x", {})
    t:close()
    assert.is_nil(res)
    assert.equal("connection", kind)
    assert.matches("127%.0%.0%.1", msg)
    assert.matches("[Cc]ertificate", msg)
  end)

  it("reports a missing ca_file as a connection error", function()
    if not need() then return end
    local c = linq.client{ api_key = "k_tls", base_url = "https://127.0.0.1:" .. srv.port .. "/api/partner",
                           ca_file = dir .. "/missing.pem" }
    local sub, err = c.webhook_subscriptions:retrieve("tls_sub")
    c:close()
    assert.is_nil(sub)
    assert.equal("APIConnectionError", err.name)
    assert.equal(1, err.attempts)
  end)
end)
