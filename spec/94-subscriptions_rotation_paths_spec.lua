-- The less travelled paths of subscriptions:rotate, against the real
-- emulator: argument and option errors (and the position they are reported
-- at), a twin deleted by hand between steps, a lost secret, no secrets
-- file, an unknown step in the secrets file, a secrets file others can
-- read, and the timeout while waiting for the receiver's confirmation.
-- Each case checks what rotate returns, what the secrets file holds and
-- which subscriptions the emulator has afterwards.
local linq = require "linqwebhooks"
local socket = require "socket"
local emulator = require "linqwebhooks.emulator"
local sfile = require "linqwebhooks.secrets_file"
local desired_mod = require "linqwebhooks.subscriptions.desired"
local rotation = require "linqwebhooks.subscriptions.rotation"
local util = require "support.util"
local rsupport = require "support.rotation"
local endpoint_subs = rsupport.endpoint_subs

local SRC = debug.getinfo(1, "S").short_src
local WHAT = "webhook_subscriptions:rotate: "

local function yes()
  return true
end

local function no()
  return false
end

-- on_step(step) that collects the steps, and the list.
local function recorder()
  local steps = {}
  return steps, function(step)
    steps[#steps + 1] = step
  end
end

local function chmod(mode, path)
  assert(util.sh("chmod " .. mode .. " " .. util.sh_quote(path)))
end

-- The fields of the endpoint's subscriptions that rotate may change, by id.
local function snapshot(client, base)
  local out = {}
  for _, s in ipairs(endpoint_subs(client, base)) do
    out[s.id] = { target_url = s.target_url, is_active = s.is_active, phone_numbers = s.phone_numbers,
                  subscribed_events = s.subscribed_events }
  end
  return out
end

describe("subscriptions:rotate, less travelled paths", function()
  local emu, client, subs

  setup(function()
    emu = emulator.spawn{}
    client = linq.client{ api_key = emu.api_key, base_url = emu.api_url, allow_http_targets = true }
    subs = client.webhook_subscriptions
  end)

  teardown(function()
    client:close()
    emu.stop()
  end)

  local function fresh(prefix)
    return rsupport.fresh(client, prefix)
  end

  -- Runs rotate on `old` until step `at` is recorded, then stops it there
  -- (a raising on_step); -> the rotation record.
  local function stop_after(at, base, path, old)
    local ok, e = pcall(subs.rotate, subs, old, { secrets_file = path, confirm = yes,
      on_step = function(step) if step == at then error("stop at " .. step, 0) end end })
    assert.is_false(ok)
    assert.equal("stop at " .. at, e)
    local rot = assert(sfile.read(path)).endpoints[base].rotation
    assert.equal(at, rot.step)
    assert.equal(old.id, rot.old_id)
    return rot
  end

  -- The old subscription as fresh made it, still serving the endpoint.
  local function assert_old_serves(base, old)
    local s = snapshot(client, base)[old.id]
    assert.is_table(s, "the old subscription is gone")
    assert.is_true(s.is_active)
    assert.equal(base, s.target_url)
    assert.same({ "+12025550123" }, s.phone_numbers)
  end

  describe("argument and option errors", function()
    -- Each call is on one line: the error must point at that line (the
    -- caller of subs:rotate), i.e. be raised at level 2.
    local P = rsupport.tmpfile()
    local cases = {
      { function() local _ = subs:rotate(42, { secrets_file = P }) end,
        "argument 'sub_or_id' must be a subscription or an id string, got number" },
      { function() local _ = subs:rotate(nil, { secrets_file = P }) end,
        "argument 'sub_or_id' must be a subscription or an id string, got nil" },
      { function() local _ = subs:rotate(true, { secrets_file = P }) end,
        "argument 'sub_or_id' must be a subscription or an id string, got boolean" },
      { function() local _ = subs:rotate("", { secrets_file = P }) end,
        "argument 'sub_or_id' must not be empty" },
      { function() local _ = subs:rotate("sub_x") end,
        "give secrets_file and/or on_secret: the new signing secret is shown only once" },
      { function() local _ = subs:rotate("sub_x", {}) end,
        "give secrets_file and/or on_secret: the new signing secret is shown only once" },
      { function() local _ = subs:rotate("sub_x", { confirm = yes, timeout = 5 }) end,
        "give secrets_file and/or on_secret: the new signing secret is shown only once" },
      { function() local _ = subs:rotate("sub_x", "opts") end,
        "options must be a table, got string" },
      { function() local _ = subs:rotate("sub_x", { secrets_file = P, bogus = 1 }) end,
        "unknown option 'bogus'" },
      { function() local _ = subs:rotate("sub_x", { secrets_file = 7 }) end,
        "option 'secrets_file' must be string, got number" },
      { function() local _ = subs:rotate("sub_x", { on_secret = "print" }) end,
        "option 'on_secret' must be function, got string" },
      { function() local _ = subs:rotate("sub_x", { secrets_file = P, confirm = true }) end,
        "option 'confirm' must be function, got boolean" },
      { function() local _ = subs:rotate("sub_x", { secrets_file = P, on_step = {} }) end,
        "option 'on_step' must be function, got table" },
      { function() local _ = subs:rotate("sub_x", { secrets_file = P, timeout = 0 }) end,
        "option 'timeout' must be a positive number of seconds" },
      { function() local _ = subs:rotate("sub_x", { secrets_file = P, timeout = -1 }) end,
        "option 'timeout' must be a positive number of seconds" },
      { function() local _ = subs:rotate("sub_x", { secrets_file = P, timeout = 1e7 }) end,
        "option 'timeout' must be a positive number of seconds" },
      { function() local _ = subs:rotate("sub_x", { secrets_file = P, timeout = "600" }) end,
        "option 'timeout' must be number, got string" },
      { function() local _ = subs:rotate("sub_x", { secrets_file = P, poll = 0 }) end,
        "option 'poll' must be a positive number of seconds" },
      { function() local _ = subs:rotate("sub_x", { secrets_file = P, poll = "a" }) end,
        "option 'poll' must be number, got string" },
      { function() local _ = subs:rotate("sub_x", { secrets_file = P, grace = -1 }) end,
        "option 'grace' must be a number of seconds >= 0" },
      { function() local _ = subs:rotate("sub_x", { secrets_file = P, grace = 1e7 }) end,
        "option 'grace' must be a number of seconds >= 0" },
      { function() local _ = subs.rotate("sub_x", { secrets_file = P }) end,
        "call it with ':'" },
    }

    for i, case in ipairs(cases) do
      it(("#%d raises '%s' at the caller's line"):format(i, case[2]), function()
        local before = #assert(subs:list())
        local ok, e = pcall(case[1])
        assert.is_false(ok)
        local line = debug.getinfo(case[1], "S").linedefined
        assert.equal(("%s:%d: %s%s"):format(SRC, line, WHAT, case[2]), e)
        -- checked before anything is done: no request, no file
        assert.equal(before, #assert(subs:list()))
        assert.is_false(util.exists(P))
      end)
    end

    it("grace = 0 is allowed (the old secret leaves the file at once)", function()
      local base, path, old = fresh("grace0")
      local new_sub = assert(subs:rotate(old, { secrets_file = path, confirm = yes, grace = 0 }))
      local ep = assert(sfile.read(path)).endpoints[base]
      assert.is_nil(ep.rotation)
      assert.equal(1, #ep.secrets)
      assert.equal(new_sub.id, ep.secrets[1].subscription_id)
      local left = endpoint_subs(client, base)
      assert.equal(1, #left)
      assert.equal(new_sub.id, left[1].id)
      os.remove(path)
    end)

    it("a subscription object without id/target_url is a bad argument 'sub_or_id' (raised at the caller)", function()
      local fn = function() local _ = subs:rotate({ id = "sub_x" }, { secrets_file = P }) end
      local ok, e = pcall(fn)
      -- (it once returned nil and a bare string)
      assert.is_false(ok, "rotate returned instead of raising on a malformed 'sub_or_id'")
      assert.matches("^" .. SRC:gsub("%p", "%%%0") .. ":" .. debug.getinfo(fn, "S").linedefined .. ": "
        .. WHAT .. "argument 'sub_or_id'", e)
      assert.is_false(util.exists(P))
    end)
  end)

  describe("the twin deleted by hand", function()
    -- (after 'deactivated' the old subscription is switched on again first)
    for _, at in ipairs({ "created", "handed_over", "confirmed", "deactivated" }) do
      it("after '" .. at .. "': rotate starts over with a new twin and finishes", function()
        local base, path, old = fresh("deleted-" .. at)
        local rot = stop_after(at, base, path, old)
        assert(subs:delete(rot.new_id))
        local steps, on_step = recorder()
        local handed = {}
        local new_sub, err = subs:rotate(old.id, { secrets_file = path, confirm = yes, on_step = on_step,
          on_secret = function(twin, secret)
            handed[#handed + 1] = twin.id
            assert.matches("^whsec_", secret)
          end })
        assert.is_nil(err)
        assert.not_equal(rot.new_id, new_sub.id)
        -- "creating" is recorded again without on_step; the new twin's steps follow
        assert.same({ "created", "handed_over", "confirmed", "deactivated", "done" }, steps)
        assert.same({ new_sub.id }, handed)
        local left = endpoint_subs(client, base)
        assert.equal(1, #left)
        assert.equal(new_sub.id, left[1].id)
        assert.equal(desired_mod.with_marker(base, 1), left[1].target_url)
        assert.is_true(left[1].is_active)
        assert.same({ "+12025550123" }, left[1].phone_numbers)
        assert.same({ "message.sent", "message.received" }, left[1].subscribed_events)
        local ep = assert(sfile.read(path)).endpoints[base]
        assert.is_nil(ep.rotation)
        assert.equal(3, #ep.secrets)
        assert.equal(new_sub.id, ep.secrets[1].subscription_id)
        assert.is_nil(ep.secrets[1].expires_at)
        -- the deleted twin's secret and the old one's expire after the grace
        local expiring = {}
        for i = 2, 3 do
          assert.is_number(ep.secrets[i].expires_at)
          expiring[ep.secrets[i].subscription_id] = true
        end
        assert.same({ [rot.new_id] = true, [old.id] = true }, expiring)
        os.remove(path)
      end)
    end
  end)

  describe("a lost secret (the twin's secret no longer in the secrets file)", function()
    local function drop_twin_secret(base, path)
      assert(sfile.update(path, function(doc)
        local ep = doc.endpoints[base]
        local kept = {}
        for _, s in ipairs(ep.secrets) do
          if s.subscription_id ~= ep.rotation.new_id then
            kept[#kept + 1] = s
          end
        end
        ep.secrets = kept
      end))
    end

    it("after 'created': error lost_secret, nothing handed over or changed; deleting the twin recovers",
      function()
        local base, path, old = fresh("lost")
        local rot = stop_after("created", base, path, old)
        drop_twin_secret(base, path)
        local before = util.read_file(path)
        local handed, steps, on_step = 0, recorder()
        local new_sub, err = subs:rotate(old.id, { secrets_file = path, confirm = yes, on_step = on_step,
          on_secret = function() handed = handed + 1 end })
        assert.is_nil(new_sub)
        assert.equal("rotation", err.kind)
        assert.equal("lost_secret", err.reason)
        assert.equal(WHAT .. "the new subscription's secret is not in the secrets file", err.message)
        assert.equal(0, handed)
        assert.same({}, steps)
        assert.equal(before, util.read_file(path)) -- still at "created", same twin
        local now = snapshot(client, base)
        assert_old_serves(base, old)
        assert.same({ rotation.PARKING_NUMBER }, now[rot.new_id].phone_numbers) -- still parked
        -- the way out: delete the useless twin; rotate starts over
        assert(subs:delete(rot.new_id))
        new_sub = assert(subs:rotate(old.id, { secrets_file = path, confirm = yes }))
        assert.not_equal(rot.new_id, new_sub.id)
        rsupport.check_done(client, base, path, old, new_sub)
      end)

    it("after 'handed_over', with the default (probe) confirm: error lost_secret, nothing changed", function()
      local base, path, old = fresh("lost-probe")
      local rot = stop_after("handed_over", base, path, old)
      drop_twin_secret(base, path)
      local before = util.read_file(path)
      local ok, new_sub, err = pcall(subs.rotate, subs, old.id, { secrets_file = path, timeout = 0.2,
                                                                  poll = 0.05 })
      assert.is_true(ok, "rotate raised: " .. tostring(new_sub))
      assert.is_nil(new_sub)
      assert.equal("rotation", err.kind)
      assert.equal("lost_secret", err.reason)
      assert.equal(before, util.read_file(path))
      assert_old_serves(base, old)
      assert.same({ rotation.PARKING_NUMBER }, snapshot(client, base)[rot.new_id].phone_numbers)
      os.remove(path)
    end)
  end)

  describe("without a secrets file", function()
    it("on_secret gets the parked twin and its secret once; confirm the same twin; no file written", function()
      local base, path, old = fresh("memory")
      local before = util.read_file(path) -- apply's file: rotate must not touch it
      local steps, on_step = recorder()
      local log = {}
      local new_sub, err = subs:rotate(old.id, { on_step = on_step,
        on_secret = function(twin, secret)
          log[#log + 1] = "secret"
          assert.equal(desired_mod.with_marker(base, 1), twin.target_url)
          assert.same({ rotation.PARKING_NUMBER }, twin.phone_numbers)
          assert.is_nil(twin.signing_secret)
          assert.matches("^whsec_", secret)
          log.twin = twin.id
        end,
        confirm = function(twin)
          log[#log + 1] = "confirm " .. twin.id
          return true
        end })
      assert.is_nil(err)
      assert.same({ "creating", "created", "handed_over", "confirmed", "deactivated", "done" }, steps)
      assert.same({ "secret", "confirm " .. new_sub.id }, { log[1], log[2] })
      assert.equal(2, #log)
      assert.equal(new_sub.id, log.twin)
      local left = endpoint_subs(client, base)
      assert.equal(1, #left)
      assert.equal(new_sub.id, left[1].id)
      assert.is_true(left[1].is_active)
      assert.same({ "+12025550123" }, left[1].phone_numbers) -- unparked
      assert.equal(before, util.read_file(path))
      os.remove(path)
    end)

    it("nothing to resume from: after a timeout, rotate again makes a new twin and drops the parked one",
      function()
        local base, path, old = fresh("memory-timeout")
        local secrets = {}
        local function keep(twin, secret)
          secrets[#secrets + 1] = { twin.id, secret }
        end
        local new_sub, err = subs:rotate(old.id, { on_secret = keep, confirm = no, timeout = 0.2, poll = 0.05 })
        assert.is_nil(new_sub)
        assert.equal("timeout", err.reason)
        assert.equal(1, #secrets)
        local first = secrets[1][1]
        local now = snapshot(client, base)
        assert_old_serves(base, old)
        assert.equal(desired_mod.with_marker(base, 1), now[first].target_url)
        assert.same({ rotation.PARKING_NUMBER }, now[first].phone_numbers)

        new_sub = assert(subs:rotate(old.id, { on_secret = keep, confirm = yes }))
        assert.equal(2, #secrets)
        assert.equal(new_sub.id, secrets[2][1])
        assert.not_equal(first, new_sub.id)
        assert.not_equal(secrets[1][2], secrets[2][2])
        local left = endpoint_subs(client, base)
        assert.equal(1, #left)
        assert.equal(new_sub.id, left[1].id)
        assert.equal(desired_mod.with_marker(base, 2), left[1].target_url)
        assert.same({ "+12025550123" }, left[1].phone_numbers)
        assert.is_true(left[1].is_active)
        os.remove(path)
      end)
  end)

  it("an unknown step in the secrets file: an error naming it, nothing changed", function()
    local base, path, old = fresh("bogus-step")
    local rot = stop_after("confirmed", base, path, old)
    assert(sfile.update(path, function(doc) doc.endpoints[base].rotation.step = "bogus" end))
    local before, subs_before = util.read_file(path), snapshot(client, base)
    local steps, on_step = recorder()
    local new_sub, err = subs:rotate(old.id, { secrets_file = path, confirm = yes, on_step = on_step })
    -- (it once returned the twin as if the rotation had finished, while the
    -- old subscription still served the endpoint and the record stayed)
    assert.is_nil(new_sub, "rotate reported success for a rotation it did not carry out")
    assert.equal("rotation", err.kind)
    assert.equal("bad_state", err.reason)
    assert.matches("bogus", err.message, 1, true)
    assert.same({}, steps)
    assert.equal(before, util.read_file(path))
    assert.same(subs_before, snapshot(client, base))
    assert.is_table(subs_before[rot.new_id])
    os.remove(path)
  end)

  describe("a secrets file group or others can read", function()
    for _, mode in ipairs({ "640", "604", "644" }) do
      it("mode " .. mode .. ": refused (bad_mode) before anything is done", function()
        local base, path, old = fresh("mode-" .. mode)
        chmod(mode, path)
        local before = util.read_file(path)
        local called = {}
        local function spy(name)
          return function() called[#called + 1] = name return true end
        end
        local new_sub, err = subs:rotate(old.id, { secrets_file = path, confirm = spy("confirm"),
          on_secret = spy("on_secret"), on_step = spy("on_step") })
        assert.is_nil(new_sub)
        assert.equal("secrets_file", err.kind)
        assert.equal("bad_mode", err.reason)
        assert.equal("secrets file " .. path .. ": mode " .. mode
          .. " lets group or others access it (signing secrets: chmod 600 it)", err.message)
        assert.not_matches("whsec_", tostring(err))
        assert.same({}, called)
        assert.equal(before, util.read_file(path))
        local left = endpoint_subs(client, base)
        assert.equal(1, #left) -- no twin created
        assert_old_serves(base, old)
        os.remove(path)
      end)
    end

    it("in the middle of a rotation: refused, record and both subscriptions stay; chmod 600 resumes", function()
      local base, path, old = fresh("mode-mid")
      local rot = stop_after("handed_over", base, path, old)
      chmod("644", path)
      local before, subs_before = util.read_file(path), snapshot(client, base)
      local new_sub, err = subs:rotate(old.id, { secrets_file = path, confirm = yes })
      assert.is_nil(new_sub)
      assert.equal("bad_mode", err.reason)
      assert.equal(before, util.read_file(path))
      assert.same(subs_before, snapshot(client, base))
      assert.same({ rotation.PARKING_NUMBER }, subs_before[rot.new_id].phone_numbers)
      chmod("600", path)
      new_sub = assert(subs:rotate(old.id, { secrets_file = path, confirm = yes }))
      assert.equal(rot.new_id, new_sub.id)
      rsupport.check_done(client, base, path, old, new_sub)
    end)
  end)

  describe("the timeout while waiting for the confirmation", function()
    it("returns the timeout error, leaves 'handed_over' recorded, the twin parked; rotate again finishes",
      function()
        local base, path, old = fresh("timeout")
        local steps, on_step = recorder()
        local asked = {}
        local new_sub, err = subs:rotate(old, { secrets_file = path, timeout = 0.2, poll = 0.05, on_step = on_step,
          confirm = function(twin) asked[#asked + 1] = twin.id return false end })
        assert.is_nil(new_sub)
        assert.equal("rotation", err.kind)
        assert.equal("timeout", err.reason)
        assert.equal("handed_over", err.step)
        assert.equal(WHAT .. "the receiver did not confirm the new key within 0.2 s; the old subscription"
          .. " still serves the endpoint (rotate again to keep waiting)", err.message)
        assert.equal("linqwebhooks: timeout: " .. err.message, tostring(err))
        assert.same({ "creating", "created", "handed_over" }, steps)
        local ep = assert(sfile.read(path)).endpoints[base]
        local rot = ep.rotation
        assert.equal("handed_over", rot.step)
        assert.equal(old.id, rot.old_id)
        assert.is_true(#asked >= 1)
        for _, id in ipairs(asked) do
          assert.equal(rot.new_id, id)
        end
        assert.equal(2, #ep.secrets)
        assert.equal(rot.new_id, ep.secrets[1].subscription_id)
        assert.equal(old.id, ep.secrets[2].subscription_id)
        assert.is_nil(ep.secrets[1].expires_at)
        assert.is_nil(ep.secrets[2].expires_at) -- the old secret is still the one in use
        local now = snapshot(client, base)
        assert_old_serves(base, old)
        assert.equal(desired_mod.with_marker(base, 1), now[rot.new_id].target_url)
        assert.same({ rotation.PARKING_NUMBER }, now[rot.new_id].phone_numbers)

        steps = {}
        new_sub = assert(subs:rotate(old.id, { secrets_file = path, confirm = yes, on_step = function(s)
          steps[#steps + 1] = s
        end }))
        assert.equal(rot.new_id, new_sub.id)
        assert.same({ "confirmed", "deactivated", "done" }, steps)
        rsupport.check_done(client, base, path, old, new_sub)
      end)

    it("with the default probe and no receiver listening: the timeout error, not a connection error", function()
      -- an endpoint on a loopback port nothing listens on: every probe is
      -- refused, which counts as "not yet"
      local base = "http://127.0.0.1:" .. util.free_port() .. "/hooks"
      local path = rsupport.tmpfile()
      assert(subs:apply({ { target_url = base, subscribed_events = { "message.received" } } },
        { secrets_file = path }))
      local old = endpoint_subs(client, base)[1]
      local new_sub, err = subs:rotate(old.id, { secrets_file = path, timeout = 0.2, poll = 0.05 })
      assert.is_nil(new_sub)
      assert.equal("rotation", err.kind)
      assert.equal("timeout", err.reason)
      assert.equal("handed_over", err.step)
      local rot = assert(sfile.read(path)).endpoints[base].rotation
      assert.equal("handed_over", rot.step)
      local now = snapshot(client, base)
      assert.is_true(now[old.id].is_active)
      assert.is_nil(now[old.id].phone_numbers)
      assert.same({ rotation.PARKING_NUMBER }, now[rot.new_id].phone_numbers)
      assert(subs:delete(old.id))
      assert(subs:delete(rot.new_id))
      os.remove(path)
    end)

    it("confirm is polled for the whole timeout, also when the wait starts late in a second", function()
      local base, path, old = fresh("timeout-clock")
      -- start just past a second boundary + 0.7 s: a deadline kept in whole
      -- seconds (os.time) would end a 1 s wait about 0.3 s later
      local t0 = os.time()
      while os.time() == t0 do
        socket.sleep(0.01)
      end
      socket.sleep(0.7)
      local first
      local new_sub, err = subs:rotate(old, { secrets_file = path, timeout = 1, poll = 0.05,
        confirm = function() first = first or socket.gettime() return false end })
      local waited = socket.gettime() - first
      assert.is_nil(new_sub)
      assert.equal("timeout", err.reason)
      assert.is_true(waited >= 0.9, ("a 1 s timeout gave up after %.2f s"):format(waited))
      assert.equal("handed_over", assert(sfile.read(path)).endpoints[base].rotation.step)
      os.remove(path)
    end)
  end)
end)
