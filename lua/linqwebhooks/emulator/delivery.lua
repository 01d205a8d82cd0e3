--- Signed webhook delivery with Linq's retry policy, as non-blocking state
-- machines in the emulator's select loop.
--
-- Each (event, subscription) pair is a job. Every attempt signs the same body
-- with the subscription's secret, a fresh timestamp and the event id as
-- webhook-id, and POSTs it with both header sets. 2xx = delivered; 5xx, 429,
-- timeouts and connection errors are retried after base_delay * 2^(n-1)
-- seconds (capped at max_delay) up to `attempts` attempts; other statuses are
-- final. Retries are timers, never sleeps.
--
-- At most `max_in_flight` attempts run at once; the others wait in a FIFO
-- queue and start as running ones finish (their timeout counts from the
-- start), so a receiver that never answers cannot exhaust the descriptors.
-- https:// targets are reached with LuaSec (the handshake is driven by the
-- loop); `ca_file` names the trusted CAs (default: the system bundle),
-- `insecure = true` skips certificate and host name checks. TLS failures are
-- logged as "tls: ..." and retried like connection errors.
local socket = require "socket"
local linq = require "linqwebhooks"
local util = require "linqwebhooks.emulator.util"
local tls_name = require "linqwebhooks.tls_name"

local M = {}

M.DEFAULTS = { attempts = 10, base_delay = 3, max_delay = 900, timeout = 10, max_in_flight = 128,
               insecure = false }
M.SYSTEM_CA = "/etc/ssl/certs/ca-certificates.crt"
M.MAX_LOG = 10000
M.MAX_RESPONSE_HEAD = 16 * 1024

local Delivery = {}
Delivery.__index = Delivery

--- opts: attempts, base_delay, max_delay, timeout; lp: the loop; state: for
-- cancelling retries of deleted/deactivated subscriptions.
function M.new(lp, opts, state, logger)
  local self = setmetatable({ lp = lp, state = state, log = {}, jobs = {}, logger = logger,
                              in_flight = 0, queue = {}, qhead = 1 }, Delivery)
  for k, v in pairs(M.DEFAULTS) do
    if opts and opts[k] ~= nil then
      self[k] = opts[k]
    else
      self[k] = v
    end
  end
  self.ca_file = opts and opts.ca_file
  return self
end

local function record(self, job, fields)
  local e = {
    event_id = job.event_id,
    event_type = job.event_type,
    subscription_id = job.sub_id,
    target_url = job.url,
    attempt = job.attempt,
    at = util.rfc3339(job.started, 6),
    duration_ms = math.floor((socket.gettime() - job.started) * 1000 + 0.5),
  }
  for k, v in pairs(fields) do
    e[k] = v
  end
  local log = self.log
  log[#log + 1] = e
  if #log > M.MAX_LOG then
    table.remove(log, 1)
  end
  return e
end

local function retryable(status)
  return status == nil or status == 429 or status >= 500
end

local attempt -- forward

-- Called once per attempt with its HTTP status or an error string.
local function finish(self, job, status, err)
  local outcome
  if status and status >= 200 and status < 300 then
    outcome = "delivered"
  elseif status and not retryable(status) then
    outcome = "failed"
  elseif job.attempt >= self.attempts then
    outcome = "exhausted"
  else
    outcome = "retrying"
  end
  local entry = record(self, job, { status = status, error = err, outcome = outcome })
  if self.logger then
    self.logger("delivery " .. job.event_type .. " " .. job.event_id .. " -> " .. job.url .. " attempt "
      .. job.attempt .. ": " .. tostring(status or err) .. " (" .. outcome .. ")")
  end
  if outcome == "retrying" then
    local delay = math.min(self.base_delay * 2 ^ (job.attempt - 1), self.max_delay)
    entry.next_attempt_in = delay
    job.timer = self.lp:after(delay, function()
      job.timer = nil
      local sub = self.state:get(job.sub_id)
      if not sub or not sub.is_active then
        self.jobs[job] = nil
        return
      end
      attempt(self, job)
    end)
  else
    self.jobs[job] = nil
  end
end

-------------------------------------------------------------------------------
-- One outgoing HTTP/1.1 request (actor)

local Out = {}
Out.__index = Out

function Out:want()
  if self.phase == "handshake" then
    return self.hs_want
  elseif self.phase == "connect" or self.phase == "send" then
    return "w"
  end
  return "r"
end

local pump -- forward

local function out_done(o, lp, status, err)
  lp:remove(o)
  o.sock:close()
  local d = o.delivery
  d.in_flight = d.in_flight - 1
  finish(d, o.job, status, err)
  pump(d)
end

local function tls_params(d)
  local p = { mode = "client", protocol = "any",
              options = { "all", "no_sslv2", "no_sslv3", "no_tlsv1", "no_tlsv1_1" } }
  if d.insecure then
    p.verify = "none"
  else
    p.verify = { "peer", "fail_if_no_peer_cert" }
    p.cafile = d.ca_file or M.SYSTEM_CA
  end
  return p
end

--- The peer certificate names `host` (subjectAltName, else the CN).
local function names_host(conn, host)
  local cert = conn:getpeercertificate()
  return cert and tls_name.matches(cert, host) or false
end

local function handshake(o, lp)
  local ok, err = o.sock:dohandshake()
  if ok then
    if not o.delivery.insecure and not names_host(o.sock, o.job.parsed.host) then
      return out_done(o, lp, nil, "tls: certificate does not name " .. o.job.parsed.host)
    end
    o.phase = "send"
    return o:on_write(lp)
  elseif err == "wantread" then
    o.hs_want = "r"
  elseif err == "wantwrite" then
    o.hs_want = "w"
  else
    return out_done(o, lp, nil, "tls: " .. tostring(err))
  end
end

-- TCP is up: start TLS for https, else send.
local function connected(o, lp)
  if o.job.parsed.scheme ~= "https" then
    o.phase = "send"
    return
  end
  local ok, ssl = pcall(require, "ssl")
  if not ok then
    return out_done(o, lp, nil, "tls: LuaSec (module 'ssl') is not installed")
  end
  local conn, err = ssl.wrap(o.sock, tls_params(o.delivery))
  if not conn then
    return out_done(o, lp, nil, "tls: " .. tostring(err))
  end
  conn:settimeout(0)
  local host = o.job.parsed.host
  if not host:match("^%d+%.%d+%.%d+%.%d+$") and not host:find(":", 1, true) then
    conn:sni(host)
  end
  o.sock = conn
  o.phase = "handshake"
  o.hs_want = "w"
  return handshake(o, lp)
end

function Out:on_write(lp)
  if self.phase == "handshake" then
    return handshake(self, lp)
  end
  if self.phase == "connect" then
    local ok, err = self.sock:connect(self.ip, self.port)
    if not ok and err ~= "already connected" then
      return out_done(self, lp, nil, "connection: " .. tostring(err))
    end
    connected(self, lp)
    if self.phase ~= "send" then
      return
    end
  end
  local last, err, partial = self.sock:send(self.request, self.sent + 1)
  self.sent = last or partial or self.sent
  if err and err ~= "timeout" and err ~= "wantwrite" and err ~= "wantread" then
    return out_done(self, lp, nil, "connection: " .. tostring(err))
  end
  if self.sent >= #self.request then
    self.phase = "recv"
  end
end

function Out:on_read(lp)
  if self.phase == "handshake" then
    return handshake(self, lp)
  end
  local data, err, partial = self.sock:receive(8192)
  if err == "wantread" or err == "wantwrite" then
    err = "timeout"
  end
  local chunk = data or partial
  if chunk and #chunk > 0 then
    self.inbuf = self.inbuf .. chunk
  end
  local line = self.inbuf:match("^([^\r\n]*)\r?\n")
  if line then
    local status = line:match("^HTTP/%d%.%d (%d%d%d)")
    if not status then
      return out_done(self, lp, nil, "invalid response: malformed status line")
    end
    local code = tonumber(status)
    if code >= 100 and code < 200 then
      -- Interim response (100 Continue): skip it, wait for the real one.
      local _, stop = self.inbuf:find("\r?\n\r?\n")
      if stop then
        self.inbuf = self.inbuf:sub(stop + 1)
        if self.inbuf ~= "" then
          return self:on_read(lp)
        end
      end
      return
    end
    return out_done(self, lp, code, nil)
  end
  if #self.inbuf > M.MAX_RESPONSE_HEAD then
    return out_done(self, lp, nil, "invalid response: status line too long")
  end
  if err and err ~= "timeout" then
    return out_done(self, lp, nil, "connection: " .. (err == "closed"
      and "closed before a response" or tostring(err)))
  end
end

function Out:on_timeout(lp)
  out_done(self, lp, nil, "timeout")
end

-------------------------------------------------------------------------------

local function resolve(host)
  if host == "localhost" then
    return "127.0.0.1", false
  end
  if host:find(":", 1, true) then
    return host, true
  end
  if host:match("^%d+%.%d+%.%d+%.%d+$") then
    return host, false
  end
  local ip = socket.dns.toip(host)
  return ip, false
end

-- Opens the connection of one attempt (within the in-flight cap).
local function start(self, job)
  job.attempt = job.attempt + 1
  job.started = socket.gettime()
  self.in_flight = self.in_flight + 1
  local function fail(err)
    self.in_flight = self.in_flight - 1
    finish(self, job, nil, err)
  end
  local u = job.parsed
  if u.scheme ~= "http" and u.scheme ~= "https" then
    return fail("connection: unsupported scheme " .. tostring(u.scheme))
  end
  local ip, v6 = resolve(u.host)
  if not ip then
    return fail("connection: cannot resolve " .. u.host)
  end
  local ts = os.time()
  local signed = linq.sign({ secret = job.secret, body = job.body, id = job.event_id,
                             timestamp = ts, scheme = "both" })
  local lines = {
    "POST " .. u.target .. " HTTP/1.1",
    "Host: " .. u.authority,
    "User-Agent: linqwebhooks-emulator/" .. tostring(linq.VERSION),
    "Content-Type: application/json",
    "Content-Length: " .. #job.body,
    "Connection: close",
    "webhook-id: " .. signed["webhook-id"],
    "webhook-timestamp: " .. signed["webhook-timestamp"],
    "webhook-signature: " .. signed["webhook-signature"],
    "X-Webhook-Event: " .. job.event_type,
    "X-Webhook-Subscription-ID: " .. job.sub_id,
    "X-Webhook-Timestamp: " .. signed["X-Webhook-Timestamp"],
    "X-Webhook-Signature: " .. signed["X-Webhook-Signature"],
  }
  local sock, err
  if v6 then
    sock, err = socket.tcp6()
  else
    sock, err = socket.tcp()
  end
  if not sock then
    return fail("connection: " .. tostring(err))
  end
  sock:settimeout(0)
  local o = setmetatable({
    sock = sock, ip = ip, port = u.port, delivery = self, job = job, phase = "connect",
    request = table.concat(lines, "\r\n") .. "\r\n\r\n" .. job.body, sent = 0, inbuf = "",
    deadline = job.started + self.timeout,
  }, Out)
  local added
  added, err = self.lp:add(o)
  if not added then
    sock:close()
    return fail("connection: " .. err)
  end
  local ok
  ok, err = sock:connect(ip, u.port)
  if not ok and err ~= "timeout" then
    return out_done(o, self.lp, nil, "connection: " .. tostring(err))
  end
  if ok then
    connected(o, self.lp)
  end
end

-- Starts queued attempts while there is room.
pump = function(self)
  if self.pumping then
    return -- an attempt that failed at once, from inside this loop
  end
  self.pumping = true
  local q = self.queue
  while self.in_flight < self.max_in_flight and self.qhead <= #q do
    local job = q[self.qhead]
    q[self.qhead] = false
    self.qhead = self.qhead + 1
    if not job.cancelled then
      job.queued = nil
      local ok, err = pcall(start, self, job)
      if not ok then
        self.lp.log("delivery: " .. tostring(err))
      end
    end
  end
  if self.qhead > #q then
    self.queue, self.qhead = {}, 1
  end
  self.pumping = false
end

attempt = function(self, job)
  if self.in_flight >= self.max_in_flight then
    job.queued = true
    self.queue[#self.queue + 1] = job
    return
  end
  start(self, job)
end

--- Attempts running now and waiting for a free slot.
function Delivery:pending()
  return self.in_flight, #self.queue - self.qhead + 1
end

--- Starts delivering `body` (the exact JSON string) for one subscription.
function Delivery:submit(sub, event_id, event_type, body)
  local job = {
    sub_id = sub.id, url = sub.target_url, parsed = assert(util.parse_url(sub.target_url)),
    secret = sub.secret, event_id = event_id, event_type = event_type, body = body, attempt = 0,
  }
  self.jobs[job] = true
  -- First attempt from the loop, after the trigger request has been answered.
  job.timer = self.lp:after(0, function()
    job.timer = nil
    attempt(self, job)
  end)
  return job
end

--- Cancels the scheduled retries of a subscription (deleted).
function Delivery:cancel(sub_id)
  for job in pairs(self.jobs) do
    if job.sub_id == sub_id and (job.timer or job.queued) then
      if job.timer then
        self.lp:cancel(job.timer)
      end
      job.cancelled = true
      self.jobs[job] = nil
    end
  end
end

function Delivery:entries()
  local out = {}
  for i, e in ipairs(self.log) do
    out[i] = e
  end
  return out
end

function Delivery:clear()
  self.log = {}
end

return M
