-- linqwebhooks.url: the one URL parser, loopback test and path-segment
-- escaping, and the modules that use it (client, emulator, cosocket transport).
local url = require "linqwebhooks.url"

describe("linqwebhooks.url.is_loopback", function()
  local CASES = {
    -- loopback
    { "127.0.0.1", true }, { "127.1.2.3", true }, { "127.255.255.255", true },
    { "localhost", true }, { "LOCALHOST", true }, { "LOCALHOST.", true }, { "localhost.", true },
    { "::1", true }, { "[::1]", true }, { "0:0:0:0:0:0:0:1", true }, { "[0000::0001]", true },
    { "::ffff:127.0.0.1", true }, { "[::FFFF:127.0.0.1]", true }, { "::ffff:7f00:1", true },
    { "0:0:0:0:0:ffff:127.1.1.1", true },
    -- not loopback
    { "127.999.0.1", false }, { "127.0.0.256", false }, { "127.0.0", false }, { "127.1", false },
    { "0x7f.1", false }, { "0x7f.0.0.1", false }, { "0177.0.0.1", false }, { "127.0.0.01", false },
    { "2130706433", false }, { "128.0.0.1", false }, { "10.0.0.1", false }, { "0.0.0.0", false },
    { "::", false }, { "::2", false }, { "1::1", false }, { "::127.0.0.1", false },
    { "::ffff:10.0.0.1", false }, { "::ffff:127.999.0.1", false }, { "::1::", false },
    { ":::1", false }, { "[::1", false }, { "::1]", false }, { "localhost..", false },
    { "foo.localhost", false }, { "localhost.example.com", false }, { "evil-localhost", false },
    { "example.com", false }, { "", false }, { "127.0.0.1 ", false }, { "[127.0.0.1]", false },
    { "1:2:3:4:5:6:7:8:9", false }, { "fe80::1%eth0", false },
  }
  for _, c in ipairs(CASES) do
    it(string.format("%q -> %s", c[1], tostring(c[2])), function()
      assert.are.equal(c[2], url.is_loopback(c[1]))
    end)
  end

  it("is false for non-strings", function()
    assert.is_false(url.is_loopback(nil))
    assert.is_false(url.is_loopback(127))
  end)
end)

describe("linqwebhooks.url.parse", function()
  local GOOD = {
    { "http://127.0.0.1:8080/api/partner?x=1#frag",
      { scheme = "http", host = "127.0.0.1", port = 8080, target = "/api/partner?x=1", path = "/api/partner",
        query = "x=1", host_header = "127.0.0.1:8080", ipv6 = false, default_port = false } },
    { "HTTPS://API.Example.COM", { scheme = "https", host = "api.example.com", port = 443, target = "/",
      path = "/", host_header = "api.example.com", default_port = true } },
    { "https://example.com:443/a", { port = 443, host_header = "example.com", target = "/a" } },
    { "http://[::1]:9/hook", { host = "::1", ipv6 = true, port = 9, host_header = "[::1]:9" } },
    { "http://[::ffff:127.0.0.1]/", { host = "::ffff:127.0.0.1", port = 80, host_header = "[::ffff:127.0.0.1]" } },
    { "http://localhost?q", { host = "localhost", target = "/?q", path = "/", query = "q" } },
    { "http://a_b.example:65535/", { host = "a_b.example", port = 65535 } },
  }
  for _, c in ipairs(GOOD) do
    it("parses " .. c[1], function()
      local u, why = url.parse(c[1])
      assert.is_nil(why)
      for k, v in pairs(c[2]) do
        assert.are.equal(v, u[k], k)
      end
    end)
  end

  local BAD = {
    { "not a url", "contains whitespace or control characters" },
    { "http://exa mple.com/", "contains whitespace or control characters" },
    { "http://example.com/\n", "contains whitespace or control characters" },
    { "example.com/hook", "is not an absolute URL" },
    { "http:///hook", "has no valid host" },
    { "http://user:pw@example.com/", "must not contain credentials" },
    { "http://example.com:0/", "has an invalid port" },
    { "http://example.com:65536/", "has an invalid port" },
    { "http://example.com:000000080/", "has an invalid port" },
    { "http://example.com:/", "has an invalid port" },
    { "http://example.com:8x/", "has no valid host" },
    { "http://[::1/", "has no valid host" },
    { "http://[127.0.0.1]/", "has no valid host" },
    { "http://[::g]/", "has no valid host" },
    { "http://exa%41mple.com/", "has no valid host" },
    { 42, "is not a string" },
  }
  for _, c in ipairs(BAD) do
    it("refuses " .. tostring(c[1]):gsub("\n", "\\n"), function()
      local u, why = url.parse(c[1])
      assert.is_nil(u)
      assert.are.equal(c[2], why)
    end)
  end
end)

describe("linqwebhooks.url.escape_segment", function()
  local CASES = {
    { "sub_1", "sub_1" }, { "a-b.c~d", "a-b.c~d" }, { "a/b", "a%2Fb" }, { "a b", "a%20b" },
    { "?#", "%3F%23" }, { ".", "%2E" }, { "..", "%2E%2E" }, { "...", "..." }, { "é", "%C3%A9" },
  }
  for _, c in ipairs(CASES) do
    it(string.format("%q -> %q", c[1], c[2]), function()
      assert.are.equal(c[2], url.escape_segment(c[1]))
    end)
  end
end)

describe("one URL module for client, emulator and transport", function()
  local linq = require "linqwebhooks"
  local client_mod = require "linqwebhooks.client"
  local util = require "linqwebhooks.emulator.util"

  it("is the loopback test of the client and of the emulator", function()
    assert.are.equal(url.is_loopback, client_mod.is_loopback_host)
    assert.are.equal(url.is_loopback, util.is_loopback_host)
    assert.are.equal(url.escape_segment, client_mod.escape_id)
  end)

  it("the client allows http:// exactly for loopback hosts", function()
    for _, base in ipairs({ "http://127.0.0.1:1", "http://[::1]:1", "http://localhost:1",
                            "http://LOCALHOST.:1", "http://[::ffff:127.0.0.1]:1" }) do
      local c = linq.client{ api_key = "k", base_url = base }
      c:close()
    end
    for _, base in ipairs({ "http://127.999.0.1:1", "http://0x7f.1:1", "http://127.1:1",
                            "http://foo.localhost:1", "http://[::ffff:10.0.0.1]:1" }) do
      local ok, err = pcall(linq.client, { api_key = "k", base_url = base })
      assert.is_false(ok, base)
      assert.matches("http:// is only allowed for loopback hosts", err)
    end
  end)

  it("the emulator's parse_url is url.parse with a length limit", function()
    local u = assert(util.parse_url("http://[::1]:9/hook?version=2026-02-03"))
    assert.are.equal("::1", u.host)
    assert.are.equal("/hook?version=2026-02-03", u.target)
    assert.are.equal("version=2026-02-03", u.query)
    local none, why = util.parse_url("https://example.com/" .. string.rep("a", 2048))
    assert.is_nil(none)
    assert.are.equal("longer than 2048 characters", why)
  end)
end)
