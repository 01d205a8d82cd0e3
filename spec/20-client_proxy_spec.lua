-- API client and proxies: a fake proxy (a LuaSocket server on loopback that
-- records what it receives, spec/support/flaky_server.lua) and the proxy
-- environment variables set for a child process (libcurl reads them at each
-- transfer). A loopback base URL never goes through a proxy (the API key
-- would reach it in clear text over http://); https follows libcurl's
-- environment handling unless the `proxy` option says otherwise.
local flaky = require "support.flaky_server"
local child = require "support.child"
local sh_quote = require("support.util").sh_quote
local linq = require "linqwebhooks"

local KEY = "lk_proxy_secret_0123456789"
local LIST = { status = 200, headers = { ["Content-Type"] = "application/json" },
               body = '{"subscriptions":[]}' }
-- never resolved: only the (loopback) proxy ever sees this name
local REMOTE = "https://api.linq.invalid/api/partner"

local CHILD_CODE = [[
local proxy = os.getenv("LWH_TEST_PROXY_OPT")
local opts = { max_retries = 0, timeout = 5 }
if proxy then opts.proxy = proxy end
local c = require("linqwebhooks").client(opts)
local subs, err = c.webhook_subscriptions:list()
c:close()
io.write(subs and "ok" or ("err:" .. tostring(err and err.name)))
]]

-- Runs CHILD_CODE with every proxy variable pointing at `proxy_url`.
local function run_child(base_url, proxy_url, proxy_opt)
  local env = { "env -u NO_PROXY -u no_proxy" }
  for _, v in ipairs({ "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "ALL_PROXY", "all_proxy" }) do
    env[#env + 1] = v .. "=" .. sh_quote(proxy_url)
  end
  env[#env + 1] = "LINQ_API_V3_BASE_URL=" .. sh_quote(base_url)
  env[#env + 1] = "LINQ_API_V3_API_KEY=" .. sh_quote(KEY)
  if proxy_opt then
    env[#env + 1] = "LWH_TEST_PROXY_OPT=" .. sh_quote(proxy_opt)
  end
  local p = assert(io.popen(table.concat(env, " ") .. " " .. child.lua() .. " -e " .. sh_quote(CHILD_CODE)
    .. " 2>&1"))
  local out = p:read("*a")
  p:close()
  return out
end

local function no_key_in(reqs)
  for _, r in ipairs(reqs) do
    for _, v in pairs(r.headers) do
      assert.is_nil(v:find(KEY, 1, true))
    end
  end
end

describe("client proxies", function()
  local target, proxy, other

  before_each(function()
    target = flaky.start({ LIST })
    proxy = flaky.start({ { status = 403, body = "proxy says no" } })
    other = flaky.start({ { status = 403, body = "other proxy says no" } })
  end)

  after_each(function()
    target:stop()
    proxy:stop()
    other:stop()
  end)

  for _, host in ipairs({ "127.0.0.1", "localhost" }) do
    it("never sends a loopback http:// request (and its key) to the proxy of the environment: " .. host,
      function()
        local out = run_child("http://" .. host .. ":" .. target.port .. "/api/partner", proxy.url)
        assert.equal("ok", out)
        assert.equal(0, #proxy:requests())
        local reqs = target:requests()
        assert.equal(1, #reqs)
        assert.equal("/api/partner/v3/webhook-subscriptions", reqs[1].path)
        assert.equal("Bearer " .. KEY, reqs[1].headers.authorization)
      end)
  end

  it("ignores an explicit proxy option for a loopback base URL", function()
    local c = linq.client{ api_key = KEY, base_url = target.url, proxy = proxy.url, max_retries = 0 }
    local subs, err = c.webhook_subscriptions:list()
    c:close()
    assert.is_nil(err)
    assert.same({}, subs)
    assert.equal(0, #proxy:requests())
    assert.equal(1, #target:requests())
  end)

  it("uses libcurl's environment handling (https_proxy) for https by default: a CONNECT tunnel", function()
    local out = run_child(REMOTE, proxy.url)
    assert.equal("err:APIConnectionError", out)
    local reqs = proxy:requests()
    assert.equal(1, #reqs)
    assert.equal("CONNECT", reqs[1].method)
    assert.equal("api.linq.invalid:443", reqs[1].path)
    no_key_in(reqs)
  end)

  it("honours an explicit proxy option for https, over the environment's", function()
    local out = run_child(REMOTE, other.url, proxy.url)
    assert.equal("err:APIConnectionError", out)
    assert.equal(0, #other:requests())
    local reqs = proxy:requests()
    assert.equal(1, #reqs)
    assert.equal("CONNECT", reqs[1].method)
    assert.equal("api.linq.invalid:443", reqs[1].path)
    no_key_in(reqs)
  end)

  it("honours an explicit proxy option in process too", function()
    local c = linq.client{ api_key = KEY, base_url = REMOTE, proxy = proxy.url, max_retries = 0, timeout = 5 }
    local subs, err = c.webhook_subscriptions:list()
    c:close()
    assert.is_nil(subs)
    assert.equal("APIConnectionError", err.name)
    local reqs = proxy:requests()
    assert.equal(1, #reqs)
    assert.equal("CONNECT", reqs[1].method)
    no_key_in(reqs)
  end)
end)

describe("client option proxy", function()
  it("takes a proxy URL or false, and nothing else", function()
    linq.client{ api_key = KEY, proxy = false }:close()
    linq.client{ api_key = KEY, proxy = "http://127.0.0.1:3128" }:close()
    linq.client{ api_key = KEY, proxy = "socks5h://127.0.0.1:1080" }:close()
    assert.has_error(function() linq.client{ api_key = KEY, proxy = true } end,
      "linq.client: option 'proxy' must be a proxy URL or false (true is not a proxy)")
    local ok, err = pcall(linq.client, { api_key = KEY, proxy = "ftp://user:pw@127.0.0.1:21" })
    assert.is_false(ok)
    assert.matches("option 'proxy' must be a proxy URL", err)
    assert.is_nil(err:find("pw", 1, true))
    assert.has_error(function() linq.client{ api_key = KEY, proxy = 3128 } end,
      "linq.client: option 'proxy' must be string or boolean, got number")
  end)
end)
