--- Retry policy of the API client (the official Linq SDKs' policy, made safe
-- for `create`).
--
-- * Retried: connection errors, timeouts, HTTP 408, 409, 429 and >= 500.
-- * `x-should-retry: true|false` overrides the status-based decision.
-- * Non-idempotent requests (`create`) are never re-sent once they may have
--   reached the server: not after a timeout, a connection dropped after the
--   request was sent, a 409, or any 5xx (a 502/503/504 from a gateway says
--   nothing about whether the upstream created the subscription), whatever
--   `x-should-retry` says -- a second attempt could make a second
--   subscription. A create IS retried after a connection that failed before
--   anything was sent, a 408 and a 429 (the server did not process it), and
--   a 4xx other than 409 that carries `x-should-retry: true`.
-- * Never retried, for any method: responses over max_body, header limits
--   (detail "too_large") and TLS certificate failures (detail "tls").
-- * Delay: `retry-after-ms`, else `Retry-After` (seconds or HTTP-date), capped
--   at 60 s; else min(0.5 * 2^n, 8) s minus up to 25 % jitter (n = retries so far).
local core = require "linqwebhooks.core"

local M = {}

M.MAX_SERVER_WAIT = 60

local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8, Sep = 9,
                 Oct = 10, Nov = 11, Dec = 12 }

-- Days from 1970-01-01 to y-m-d (proleptic Gregorian), no os.time/timezone.
local function days_from_civil(y, m, d)
  if m <= 2 then
    y = y - 1
  end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = math.floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

--- Parses an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") into Unix seconds.
function M.parse_http_date(s)
  local d, mon, y, hh, mm, ss = s:match("^%a%a%a, (%d%d?) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT$")
  if not d or not MONTHS[mon] then
    return nil
  end
  return days_from_civil(tonumber(y), MONTHS[mon], tonumber(d)) * 86400
    + tonumber(hh) * 3600 + tonumber(mm) * 60 + tonumber(ss)
end

--- Server-requested wait in seconds from the response headers, or nil.
-- `now` is the current Unix time (injectable for tests).
function M.server_wait(headers, now)
  local v
  local ms = headers["retry-after-ms"]
  if ms then
    local n = tonumber(ms)
    if n and n == n and n >= 0 then
      v = n / 1000
    end
  end
  if not v then
    local ra = headers["retry-after"]
    if ra then
      local n = tonumber(ra)
      if n and n == n and n >= 0 then
        v = n
      else
        local t = M.parse_http_date(ra)
        if t then
          v = t - (now or os.time())
          if v < 0 then
            v = 0
          end
        end
      end
    end
  end
  if v and v > M.MAX_SERVER_WAIT then
    v = M.MAX_SERVER_WAIT
  end
  return v
end

-- A uniform number in [0, 1) from OpenSSL's CSPRNG: never the same sequence
-- in two processes (LuaJIT's math.random is unseeded, so every process
-- would otherwise retry at the same moments).
local function uniform()
  local a, b, c = core.random_bytes(3):byte(1, 3)
  return ((a * 256 + b) * 256 + c) / 16777216
end

--- Exponential backoff with up to 25 % jitter; `n` = retries already taken.
function M.backoff(n, random)
  local d = 0.5 * 2 ^ n
  if d > 8 then
    d = 8
  end
  return d * (1 - (random or uniform)() * 0.25)
end

--- Should an HTTP response be retried? `idempotent` is false for create.
function M.should_retry_status(status, headers, idempotent)
  if not idempotent and (status == 409 or status >= 500) then
    return false
  end
  local x = headers["x-should-retry"]
  if x == "true" then
    return true
  elseif x == "false" then
    return false
  end
  return status == 408 or status == 409 or status == 429 or status >= 500
end

--- Should a transport failure be retried? `detail` comes from the transport.
function M.should_retry_failure(kind, detail, idempotent)
  if detail == "too_large" or detail == "tls" then
    return false
  end
  if not idempotent then
    return detail == "not_sent"
  end
  return kind == "timeout" or kind == "connection"
end

return M
