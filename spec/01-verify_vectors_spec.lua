-- Every vector in spec/fixtures/vectors.json (shared with the C suite):
-- Standard Webhooks SW-1..SW-5, OAI-1, Linq LQ-1..LQ-7 and vectors B/C, the
-- negative and divergence probes with our strict behaviour pinned, and the
-- secret-parsing cases.
local linq = require "linqwebhooks"
local json = require "linqwebhooks.json"
local read_file = require("support.util").read_file

local doc = assert(json.decode(assert(read_file("spec/fixtures/vectors.json"))))

local function body_of(v)
  if v.body then
    return v.body
  elseif v.body_hex then
    return (v.body_hex:gsub("..", function(h) return string.char(tonumber(h, 16)) end))
  elseif v.body_repeat then
    return string.rep(v.body_repeat.char, v.body_repeat.count)
  end
  return ""
end

local function mixed_case(h)
  local out = {}
  for k, val in pairs(h) do
    local i = 0
    out[(k:gsub("%a", function(c)
      i = i + 1
      return i % 2 == 0 and c:upper() or c:lower()
    end))] = val
  end
  return out
end

-- every block runs once per binding of the C core (classic; FFI under LuaJIT);
-- the blocks keep their indentation (a wrapper, not a rewrite)
require("support.backends").each({ describe = describe, setup = setup, teardown = teardown }, function()
describe("verification vectors", function()
  for _, v in ipairs(doc.vectors) do
    it(v.name, function()
      local tol = v.tolerance
      if tol ~= nil and tol < 0 then
        tol = false
      end
      local secrets = {}
      for i, s in ipairs(v.secrets) do
        secrets[i] = s
      end
      local verifier = linq.verifier {
        secrets = secrets,
        scheme = v.scheme or "auto",
        tolerance = tol,
        clock = function() return v.now end,
      }
      local headers = v.header_case == "mixed" and mixed_case(v.headers) or v.headers
      local body = body_of(v)
      local info, err = verifier:verify(body, headers)
      if v.expect == "ok" then
        assert.is_nil(err and tostring(err))
        assert.truthy(info)
        if v.key_index then
          assert.are.equal(v.key_index, info.key_index)
        end
        if v.expect_scheme then
          assert.are.equal(v.expect_scheme, info.scheme)
        end
        if info.scheme == "standard" then
          assert.are.equal(v.headers["webhook-id"], info.id)
        end
      else
        assert.is_nil(info)
        assert.are.equal(v.expect, err.reason)
        assert.are.equal("string", type(err.message))
        assert.are.equal("linqwebhooks: " .. v.expect .. ": " .. err.message, tostring(err))
      end
      -- the streaming path agrees with the one-shot path
      local s, serr = verifier:stream(headers)
      local sinfo
      if s then
        for i = 1, #body, 4096 do
          s:update(body:sub(i, i + 4095))
        end
        sinfo, serr = s:finish()
      end
      assert.are.equal(info and info.scheme, sinfo and sinfo.scheme)
      assert.are.equal(err and err.reason, serr and serr.reason)
      verifier:close()
    end)
  end
end)

describe("secret parsing", function()
  for _, s in ipairs(doc.secrets) do
    it(s.name, function()
      local ok, err = pcall(linq.verifier, { secret = s.secret })
      if s.expect == "ok" then
        assert.is_true(ok, tostring(err))
      else
        assert.is_false(ok)
        assert.matches("linq.verifier: secret #1: ", err, 1, true)
        if #s.secret > 12 then
          assert.is_nil(err:find(s.secret:sub(7), 1, true))
        end
      end
    end)
  end
end)
end)
