-- The secrets file (0600, atomic replace, refuses group/world access) and
-- linq.webhooks{ secrets_file = PATH }, which follows it without a restart.
local linq = require "linqwebhooks"
local json = require "linqwebhooks.json"
local util = require "support.util"
local file_info = require("linqwebhooks.core").file_info
local socket = require "socket"
local sfile = require "linqwebhooks.secrets_file"

local chmod = require("linqwebhooks.process").chmod

local URL = "https://app.example.com/linq"
local S1, S2, S3 = "whsec_" .. ("a"):rep(32), "whsec_" .. ("b"):rep(32), "whsec_" .. ("c"):rep(32)

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir " .. util.sh_quote(d)))
  return d
end

local function files_in(dir)
  local out = {}
  local p = assert(io.popen("ls -A " .. util.sh_quote(dir)))
  for f in p:lines() do
    out[#out + 1] = f
  end
  p:close()
  table.sort(out)
  return out
end

local function rmdir(dir)
  for _, f in ipairs(files_in(dir)) do
    os.remove(dir .. "/" .. f)
  end
  os.remove(dir)
end

local function delivery(secret, id)
  local body = json.encode({ api_version = "v3", event_type = "message.received", event_id = id or "ev-1",
                             created_at = "2026-02-05T19:31:13Z", data = {} })
  return body, linq.sign({ secret = secret, body = body, id = id or "ev-1" })
end

local function doc_with(list)
  local doc = sfile.empty()
  for i = #list, 1, -1 do -- add_secret puts each in front: list[1] ends up newest
    local e = list[i]
    local ep = sfile.add_secret(doc, e.url or URL, e.secret, e.id, e.added_at)
    ep.secrets[1].expires_at = e.expires_at
  end
  return doc
end

describe("secrets file", function()
  local dir, path
  before_each(function()
    dir = tmpdir()
    path = dir .. "/secrets.json"
  end)
  after_each(function()
    rmdir(dir)
  end)

  it("is written with mode 0600, atomically, and read back", function()
    assert(sfile.write(path, doc_with({ { secret = S1, id = "sub1" } })))
    assert.equal(384, file_info(path).mode) -- 0600
    local ino = file_info(path).ino
    local doc = assert(sfile.read(path))
    assert.equal(1, doc.version)
    assert.equal(S1, doc.endpoints[URL].secrets[1].secret)
    assert.equal("sub1", doc.endpoints[URL].secrets[1].subscription_id)
    -- replaced by rename: a new inode, no temp file left next to it
    assert(sfile.update(path, function(d) sfile.add_secret(d, URL, S2, "sub2") end))
    assert.not_equal(ino, file_info(path).ino)
    assert.same({ "secrets.json" }, files_in(dir))
    assert.same({ S2, S1 }, sfile.secrets(assert(sfile.read(path)), URL))
    assert.equal(384, file_info(path).mode) -- 0600
  end)

  it("refuses a file group or others can access, without showing its content", function()
    assert(sfile.write(path, doc_with({ { secret = S1 } })))
    for _, mode in ipairs({ 420, 416, 388 }) do -- 0644, 0640, 0604
      assert(chmod(path, mode))
      local doc, err = sfile.read(path)
      assert.is_nil(doc)
      assert.equal("bad_mode", err.reason)
      assert.matches("lets group or others access it", tostring(err))
      assert.matches("chmod 600", tostring(err))
      assert.not_matches("whsec_", tostring(err))
      local ok, e = pcall(linq.webhooks, { secrets_file = path })
      assert.is_false(ok)
      assert.matches("option 'secrets_file'.*lets group or others", e)
      assert.not_matches("whsec_", e)
    end
  end)

  it("reports missing, invalid and unsupported files by reason", function()
    local _, err = sfile.read(path)
    assert.equal("missing", err.reason)
    local f = assert(io.open(path, "wb"))
    f:write('{"version":1,"endpoints":{"u":{"secrets":["whsec_plain"]}}}')
    f:close()
    assert(chmod(path, 384))
    _, err = sfile.read(path)
    assert.equal("invalid", err.reason)
    assert.not_matches("whsec_plain", tostring(err))
    f = assert(io.open(path, "wb"))
    f:write('{"version":2}')
    f:close()
    _, err = sfile.read(path)
    assert.matches("unsupported version 2", tostring(err))
    f = assert(io.open(path, "wb"))
    f:write('{"version":1,"endpoints":{"u":{"secrets":[{"secret":"whsec_x"}]}}, bad')
    f:close()
    _, err = sfile.read(path)
    assert.equal("invalid", err.reason)
    assert.not_matches("whsec_x", tostring(err))
  end)

  it("lists the valid secrets newest first, per endpoint or all", function()
    local now = 1000000
    local doc = doc_with({
      { secret = S3, url = URL .. "2", added_at = now - 1 },
      { secret = S2, added_at = now - 5 },
      { secret = S1, added_at = now - 100, expires_at = now - 1 }, -- expired
    })
    assert.same({ S2 }, sfile.secrets(doc, URL, now))
    assert.same({ S3, S2 }, sfile.secrets(doc, nil, now))
    assert.same({ S2, S1 }, sfile.secrets(doc, URL, now - 10)) -- before it expired
    assert.same({}, sfile.secrets(doc, "https://other.example", now))
  end)
end)

describe("linq.webhooks{ secrets_file }", function()
  local dir, path
  before_each(function()
    dir = tmpdir()
    path = dir .. "/secrets.json"
  end)
  after_each(function()
    rmdir(dir)
  end)

  it("verifies with every valid secret of the file and follows changes without a restart", function()
    assert(sfile.write(path, doc_with({ { secret = S1 } })))
    local hooks = linq.webhooks{ secrets_file = path }
    local seen = 0
    hooks:on("message.received", function() seen = seen + 1 end)
    local body, h = delivery(S1, "e1")
    assert.equal(200, hooks:handle(body, h).status)
    body, h = delivery(S2, "e2")
    assert.equal(401, hooks:handle(body, h).status)
    -- a rotation writes the new secret: picked up within about a second
    assert(sfile.update(path, function(d) sfile.add_secret(d, URL, S2, "sub2") end))
    local status
    local deadline = socket.gettime() + 5
    repeat
      status = hooks:handle(body, h).status
      if status ~= 200 then
        socket.sleep(0.1)
      end
    until status == 200 or socket.gettime() > deadline
    assert.equal(200, status)
    assert.equal(2, seen)
    -- both keys keep working during the overlap
    body, h = delivery(S1, "e3")
    assert.equal(200, hooks:handle(body, h).status)
    assert.equal(2, hooks:verifier():secret_count())
    -- the old secret expires: after it, it no longer verifies
    assert(sfile.update(path, function(d) d.endpoints[URL].secrets[2].expires_at = os.time() end))
    body, h = delivery(S1, "e4")
    deadline = socket.gettime() + 5
    repeat
      status = hooks:handle(body, h).status
      if status ~= 401 then
        socket.sleep(0.1)
      end
    until status == 401 or socket.gettime() > deadline
    assert.equal(401, status)
    assert.not_matches("whsec_", tostring(hooks:verifier()))
  end)

  it("looks at the file at most once per second", function()
    assert(sfile.write(path, doc_with({ { secret = S1 } })))
    local hooks = linq.webhooks{ secrets_file = path }
    local v = hooks:verifier()
    local reloads = v.reloads
    for i = 1, 200 do
      local body, h = delivery(S1, "x" .. i)
      assert.equal(200, hooks:handle(body, h).status)
    end
    assert.is_true(v.reloads - reloads <= 2)
  end)

  it("keeps the last good secrets when the file breaks, and says why", function()
    assert(sfile.write(path, doc_with({ { secret = S1 } })))
    local errs = {}
    local logged = {}
    local hooks = linq.webhooks{ secrets_file = path,
                                 log = function(level, msg) logged[#logged + 1] = level .. ": " .. msg end }
    local v = hooks:verifier()
    local f = assert(io.open(path, "wb"))
    f:write("not json")
    f:close()
    local body, h = delivery(S1, "k1")
    assert(v:reload() == nil)
    errs[1] = v.last_error
    assert.equal("invalid", errs[1].reason)
    assert.equal(200, hooks:handle(body, h).status)
    -- logged at error level, once for this change of the file
    assert(v:reload() == nil)
    assert.equal(1, #logged)
    assert.matches("^error: secrets file .*secrets%.json is not valid JSON", logged[1])
    assert.matches("still verifying with the last good secrets", logged[1])
  end)

  -- n endpoints with one secret each, the first added last (newest)
  local function many(n)
    local list = {}
    for i = 1, n do
      list[i] = { secret = string.format("whsec_%032d", i), url = URL .. "/" .. i, added_at = 1000 - i }
    end
    return doc_with(list), list
  end

  it("more than 16 secrets without 'endpoint': the constructor names the file, the count and the option", function()
    local doc, list = many(17)
    assert(sfile.write(path, doc))
    local ok, e = pcall(function() local x = linq.webhooks{ secrets_file = path } return x end)
    assert.is_false(ok)
    assert.matches("^spec/90%-secrets_file_spec%.lua:%d+:", e)
    assert.matches("secrets%.json lists 17 valid secrets across its 17 endpoints", e, 1, false)
    assert.matches("at most 16", e)
    assert.matches("option 'endpoint'", e)
    assert.not_matches("whsec_", e)
    -- with endpoint, one endpoint's secrets: fine
    local hooks = linq.webhooks{ secrets_file = path, endpoint = URL .. "/17", log = false }
    local body, h = delivery(list[17].secret, "m1")
    assert.equal(200, hooks:handle(body, h).status)
  end)

  it("a reload that finds more than 16 secrets keeps the last good ones and logs an error once per change", function()
    local doc, list = many(16)
    assert(sfile.write(path, doc))
    local logged = {}
    local hooks = linq.webhooks{ secrets_file = path,
                                 log = function(level, msg) logged[#logged + 1] = { level, msg } end }
    local v = hooks:verifier()
    assert.equal(16, v:secret_count())
    -- a 17th subscription
    local S17 = string.format("whsec_%032d", 17)
    assert(sfile.update(path, function(d) sfile.add_secret(d, URL .. "/17", S17, "sub17") end))
    local ok, err = v:reload()
    assert.is_nil(ok)
    assert.equal("too_many_secrets", err.reason)
    assert.equal(1, #logged)
    assert.equal("error", logged[1][1])
    assert.matches("secrets%.json lists 17 valid secrets", logged[1][2])
    assert.matches("option 'endpoint'", logged[1][2])
    assert.not_matches("whsec_", logged[1][2])
    -- the old keys stay in use; the new one is refused (and said so, once)
    local body, h = delivery(list[1].secret, "r1")
    assert.equal(200, hooks:handle(body, h).status)
    body, h = delivery(S17, "r2")
    assert.equal(401, hooks:handle(body, h).status)
    for _ = 1, 3 do
      assert.is_nil(v:reload())
      assert.equal(401, hooks:handle(body, h).status)
    end
    assert.equal(1, #logged)
    -- another change of the file that still has too many: logged again
    assert(sfile.update(path, function(d) sfile.add_secret(d, URL .. "/18", S3, "sub18") end))
    assert.is_nil(v:reload())
    assert.equal(2, #logged)
    assert.matches("lists 18 valid secrets", logged[2][2])
    -- back to 16 (two old ones expire): the new key works, nothing more logged
    assert(sfile.update(path, function(d)
      d.endpoints[URL .. "/15"].secrets[1].expires_at = os.time() - 1
      d.endpoints[URL .. "/16"].secrets[1].expires_at = os.time() - 1
    end))
    assert.is_true(v:reload())
    assert.equal(200, hooks:handle(body, h).status)
    assert.equal(2, #logged)
  end)

  it("endpoint = URL takes that endpoint's secrets only (marker ignored)", function()
    assert(sfile.write(path, doc_with({ { secret = S1 }, { secret = S2, url = URL .. "/other" } })))
    local hooks = linq.webhooks{ secrets_file = path, endpoint = URL .. "?linqwh_rotation=3" }
    local body, h = delivery(S1, "p1")
    assert.equal(200, hooks:handle(body, h).status)
    body, h = delivery(S2, "p2")
    assert.equal(401, hooks:handle(body, h).status)
    local all = linq.webhooks{ secrets_file = path }
    assert.equal(200, all:handle(body, h).status)
  end)

  it("checks its options", function()
    assert(sfile.write(path, doc_with({ { secret = S1 } })))
    local function raises(opts, pat)
      local ok, e = pcall(function() local x = linq.webhooks(opts) return x end)
      assert.is_false(ok)
      assert.matches(pat, e)
      assert.matches("^spec/90%-secrets_file_spec%.lua:%d+:", e)
    end
    raises({ secrets_file = 5 }, "option 'secrets_file' must be string, got number")
    raises({ secrets_file = path, secret = S1 }, "give 'secrets_file' or 'secret'/'secrets', not both")
    raises({ endpoint = URL, secret = S1 }, "option 'endpoint' needs option 'secrets_file'")
    raises({ secrets_file = dir .. "/missing.json" }, "option 'secrets_file':.*missing%.json")
    raises({ secrets_file = path, endpoint = "https://nobody.example" }, "has no valid secret for endpoint")
    raises({}, "option 'secret' %(or 'secrets'%) is required")
  end)
end)
