local linq = require "linqwebhooks"

describe("linq.store.memory", function()
  local now
  local function clock()
    return now
  end
  before_each(function()
    now = 1000
  end)

  it("claims an absent key once, then reports it in flight", function()
    local s = linq.store.memory{ clock = clock }
    assert.is_true(s:claim("evt_1"))
    local ok, state = s:claim("evt_1")
    assert.is_false(ok)
    assert.equal("in_flight", state)
    assert.equal("in_flight", s:state("evt_1"))
  end)

  it("commit marks a key seen; release makes it claimable again", function()
    local s = linq.store.memory{ clock = clock }
    assert.is_true(s:claim("a"))
    assert.is_true(s:commit("a"))
    local ok, state = s:claim("a")
    assert.is_false(ok)
    assert.equal("seen", state)

    assert.is_true(s:claim("b"))
    assert.is_true(s:release("b"))
    assert.is_nil(s:state("b"))
    assert.is_true(s:claim("b"))
  end)

  it("release never forgets a key that is already seen", function()
    local s = linq.store.memory{ clock = clock }
    s:claim("a")
    s:commit("a")
    s:release("a")
    assert.equal("seen", s:state("a"))
  end)

  it("forgets seen keys after ttl seconds (injected clock)", function()
    local s = linq.store.memory{ ttl = 600, clock = clock }
    s:claim("a")
    s:commit("a")
    now = now + 599
    assert.is_false((s:claim("a")))
    now = now + 1
    assert.is_nil(s:state("a"))
    assert.is_true(s:claim("a"))
  end)

  it("lets an abandoned in-flight claim expire after lease seconds", function()
    local s = linq.store.memory{ ttl = 600, lease = 30, clock = clock }
    assert.is_true(s:claim("a"))
    now = now + 29
    assert.is_false((s:claim("a")))
    now = now + 1
    assert.is_true(s:claim("a"))
  end)

  it("the seen ttl counts from commit, not from claim", function()
    local s = linq.store.memory{ ttl = 100, lease = 50, clock = clock }
    s:claim("a")
    now = now + 40
    s:commit("a")
    now = now + 99
    assert.equal("seen", s:state("a"))
    now = now + 1
    assert.is_nil(s:state("a"))
  end)

  it("evicts the least recently used entry when full", function()
    local s = linq.store.memory{ max = 3, clock = clock, log = false }
    for _, k in ipairs({ "a", "b", "c" }) do
      s:claim(k)
      s:commit(k)
    end
    assert.equal(3, s:size())
    -- touch "a": now "b" is the least recently used
    assert.is_false((s:claim("a")))
    s:claim("d")
    assert.equal(3, s:size())
    assert.is_nil(s:state("b"))
    assert.equal("seen", s:state("a"))
    assert.equal("seen", s:state("c"))
    assert.equal("in_flight", s:state("d"))
  end)

  it("stays bounded under many distinct keys", function()
    local s = linq.store.memory{ max = 50, clock = clock, log = false }
    for i = 1, 5000 do
      local k = "k" .. i
      assert.is_true(s:claim(k))
      if i % 2 == 0 then
        s:commit(k)
      else
        s:release(k)
      end
      now = now + 0.01
    end
    assert.is_true(s:size() <= 50)
    assert.equal("seen", s:state("k5000"))
    assert.is_nil(s:state("k1"))
  end)

  it("never evicts a claim whose handlers are still running", function()
    local s = linq.store.memory{ max = 2, ttl = 100, lease = 60, clock = clock, log = false }
    assert.is_true(s:claim("a"))
    assert.is_true(s:claim("b"))
    assert.is_true(s:claim("c"))       -- full: a and b are in flight, nothing is evicted
    assert.same({ false, "in_flight" }, { s:claim("a") })
    s:commit("a")
    s:commit("b")
    s:commit("c")
    assert.is_true(s:claim("d"))       -- now a seen entry is evicted again
    s:commit("d")
    for i = 1, 10 do
      assert.is_true(s:claim("x" .. i))
      s:commit("x" .. i)
    end
    assert.equal(2, s:size())          -- back within max once the claims ended
  end)

  it("warns when it forgets a handled id before its ttl: the first time, then at most once a minute", function()
    local logged = {}
    local s = linq.store.memory{ max = 2, ttl = 1800, clock = clock,
                                 log = function(level, msg) logged[#logged + 1] = { level, msg } end }
    for _, k in ipairs({ "a", "b" }) do
      s:claim(k)
      s:commit(k)
    end
    assert.equal(0, #logged)
    assert.equal(0, s:evictions())
    s:claim("c") -- evicts "a", handled 0 s ago: a redelivery of "a" would run again
    s:commit("c")
    assert.is_nil(s:state("a"))
    assert.equal(1, s:evictions())
    assert.equal(1, #logged)
    assert.equal("warn", logged[1][1])
    assert.equal("dedupe store linq.store.memory is full (max = 2 ids): 1 handled event id(s)"
      .. " forgotten before their ttl (1800 s), so a redelivery of such an event runs the handlers"
      .. " again; raise max (about ttl times your peak events per second: linq.store.memory{"
      .. " max = ... }) or use a shared store (linq.store.shdict, linq.store.redis)", logged[1][2])
    -- more evictions within the minute: counted, not logged
    for i = 1, 10 do
      s:claim("d" .. i)
      s:commit("d" .. i)
      now = now + 5
    end
    assert.equal(11, s:evictions())
    assert.equal(1, #logged)
    -- a minute after the first warning: one more, with the count since then
    now = 1000 + 60
    s:claim("e")
    assert.equal(2, #logged)
    assert.matches("max = 2 ids%): 11 handled event id%(s%) forgotten before their ttl %(1800 s%)"
      .. " in the last 60 s", logged[2][2])
  end)

  it("does not warn when it reuses expired entries, and log = false silences it", function()
    local logged = {}
    local s = linq.store.memory{ max = 2, ttl = 10, clock = clock,
                                 log = function(_, msg) logged[#logged + 1] = msg end }
    for i = 1, 20 do
      s:claim("k" .. i)
      s:commit("k" .. i)
      now = now + 11 -- every entry expires before the next one comes
    end
    assert.equal(0, s:evictions())
    assert.equal(0, #logged)
    local quiet = linq.store.memory{ max = 1, clock = clock, log = false }
    quiet:claim("a")
    quiet:commit("a")
    quiet:claim("b")
    assert.equal(1, quiet:evictions())
    assert.has_error(function() linq.store.memory{ log = true } end)
    assert.has_error(function() linq.store.memory{ log = "stderr" } end)
  end)

  it("warns through the log of the dispatcher it is given to, unless it has its own", function()
    local logged = {}
    local function log(level, msg) logged[#logged + 1] = level .. ": " .. msg end
    local secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw7Jxx2Oll+OE="
    -- the default store (max 10000)
    local hooks = linq.webhooks{ secret = secret, log = log }
    local st = hooks:store()
    for i = 1, 10001 do
      st:claim("id" .. i)
      st:commit("id" .. i)
    end
    assert.equal(1, #logged)
    assert.matches("^warn: dedupe store linq.store.memory is full %(max = 10000 ids%)", logged[1])
    -- a store given as dedupe
    local mine = linq.store.memory{ max = 1, clock = clock }
    linq.webhooks{ secret = secret, dedupe = mine, log = log }
    mine:claim("a")
    mine:commit("a")
    mine:claim("b")
    assert.equal(2, #logged)
    assert.matches("max = 1 ids", logged[2])
    -- a store with its own log keeps it
    local own = {}
    local kept = linq.store.memory{ max = 1, clock = clock, log = function(_, m) own[#own + 1] = m end }
    linq.webhooks{ secret = secret, dedupe = kept, log = log }
    kept:claim("a")
    kept:commit("a")
    kept:claim("b")
    assert.equal(2, #logged)
    assert.equal(1, #own)
  end)

  it("drops expired entries before evicting live ones", function()
    local s = linq.store.memory{ max = 2, ttl = 10, clock = clock }
    s:claim("old")
    s:commit("old")
    now = now + 5
    s:claim("live")
    s:commit("live")
    now = now + 6 -- "old" expired, "live" not
    s:claim("new")
    assert.equal("seen", s:state("live"))
    assert.equal("in_flight", s:state("new"))
    assert.is_true(s:size() <= 2)
  end)

  it("agrees with a simple reference model over random operations", function()
    -- reference: an array ordered from most to least recently used
    local max, ttl, lease = 8, 50, 10
    local s = linq.store.memory{ max = max, ttl = ttl, lease = lease, clock = clock, log = false }
    local ref = {}
    local function find(k)
      for i, e in ipairs(ref) do
        if e.key == k then
          return i, e
        end
      end
    end
    local function purge_expired(k)
      local i, e = find(k)
      if e and e.exp <= now then
        table.remove(ref, i)
      end
    end
    local function ref_put(k, state, exp)
      local i, e = find(k)
      if i then
        table.remove(ref, i)
      else
        -- as documented: a full store first moves up to 4 live claims from
        -- the cold end to the front; then the coldest entry goes if it
        -- expired, or if the store is full and it is not a live claim
        local function live(x)
          return x.state == "in_flight" and x.exp > now
        end
        local full = #ref >= max
        if full then
          for _ = 1, 4 do
            local t = ref[#ref]
            if not t or not live(t) then
              break
            end
            table.remove(ref)
            table.insert(ref, 1, t)
          end
        end
        local tail = ref[#ref]
        if tail and (tail.exp <= now or (full and not live(tail))) then
          table.remove(ref)
          -- then expired entries, and entries over max left by ended claims
          while ref[#ref] and (ref[#ref].exp <= now or (#ref >= max and not live(ref[#ref]))) do
            table.remove(ref)
          end
        end
        e = { key = k }
      end
      e.state, e.exp = state, exp
      table.insert(ref, 1, e)
    end
    math.randomseed(1234)
    for step = 1, 4000 do
      local k = "k" .. math.random(1, 14)
      local op = math.random(1, 10)
      if op <= 5 then
        purge_expired(k)
        local i, e = find(k)
        local ok, state = s:claim(k)
        if e then
          assert.is_false(ok, "step " .. step)
          assert.equal(e.state, state)
          table.remove(ref, i)
          table.insert(ref, 1, e)
        else
          assert.is_true(ok, "step " .. step)
          ref_put(k, "in_flight", now + lease)
        end
      elseif op <= 7 then
        s:commit(k)
        ref_put(k, "seen", now + ttl)
      elseif op == 8 then
        s:release(k)
        local i, e = find(k)
        if e and e.state == "in_flight" then
          table.remove(ref, i)
        end
      else
        now = now + math.random(0, 6)
      end
      -- every live reference entry is in the store with its state
      local claims = 0
      for _, e in ipairs(ref) do
        if e.exp > now then
          assert.equal(e.state, s:state(e.key), "step " .. step .. " key " .. e.key)
          if e.state == "in_flight" then
            claims = claims + 1
          end
        end
      end
      -- same size as the model (which may exceed max only while claims are
      -- in flight at the cold end; later insertions shrink it back)
      assert.equal(#ref, s:size(), "step " .. step .. " (" .. claims .. " claims)")
    end
  end)

  it("clear empties the store", function()
    local s = linq.store.memory{ clock = clock }
    s:claim("a")
    s:clear()
    assert.equal(0, s:size())
    assert.is_true(s:claim("a"))
  end)

  it("rejects bad options and arguments", function()
    assert.has_error(function() linq.store.memory{ maxx = 3 } end,
      "linq.store.memory: unknown option 'maxx'")
    assert.has_error(function() linq.store.memory{ max = 0 } end)
    assert.has_error(function() linq.store.memory{ max = 1.5 } end)
    assert.has_error(function() linq.store.memory{ ttl = -1 } end)
    assert.has_error(function() linq.store.memory{ ttl = "600" } end)
    assert.has_error(function() linq.store.memory(5) end)
    local s = linq.store.memory{}
    local ok, err = pcall(s.claim, s, 42)
    assert.is_false(ok)
    assert.matches("argument 'key' must be a string", err)
    local bad = linq.store.memory{ clock = function() return "now" end }
    assert.has_error(function() bad:claim("a") end)
  end)

  it("defaults to max 10000, ttl 600 and the system clock", function()
    local s = linq.store.memory()
    assert.matches("0/10000", tostring(s))
    assert.is_true(s:claim("x"))
    s:commit("x")
    assert.equal("seen", s:state("x"))
  end)
end)

describe("linq.store.memory defaults and touch (issue 9)", function()
  local now
  local function clock()
    return now
  end
  before_each(function()
    now = 1000
  end)

  it("remembers a handled id for 1800 s by default (Linq's whole retry window)", function()
    local s = linq.store.memory{ clock = clock }
    assert.is_true(s:claim("a"))
    s:commit("a")
    now = now + 1799
    assert.equal("seen", s:state("a"))
    assert.is_false((s:claim("a")))
    now = now + 2
    assert.is_nil(s:state("a"))
  end)

  it("touch renews a live claim's lease; false once it ran out or when not in flight", function()
    local s = linq.store.memory{ clock = clock, lease = 60 }
    assert.is_false(s:touch("nope"))
    assert.is_true(s:claim("k"))
    now = now + 50
    assert.is_true(s:touch("k"))        -- lease now ends at 1110
    now = now + 50                      -- 1100: would have lapsed at 1060 without the touch
    assert.equal("in_flight", s:state("k"))
    assert.is_false((s:claim("k")))
    now = now + 11                      -- 1111: lapsed
    assert.is_false(s:touch("k"))
    assert.is_true(s:claim("k"))
    s:commit("k")
    assert.is_false(s:touch("k"))       -- seen, not in flight
    assert.has_error(function() s:touch(1) end, "store:touch: argument 'key' must be a string, got number")
  end)
end)

describe("linqwebhooks.store (interface module)", function()
  local stores = require "linqwebhooks.store"

  it("is linq.store, with the loaders", function()
    assert.equal(stores, linq.store)
    assert.equal("function", type(stores.memory))
    assert.equal("function", type(stores.shdict))
    assert.equal("function", type(stores.redis))
    -- loaded on first use only (the Redis store pulls the hiredis binding)
    assert.is_nil(package.loaded["linqwebhooks.store.redis"])
    assert.equal(1800, stores.DEFAULT_TTL)
    assert.is_true(stores.is_store(linq.store.memory{}))
    assert.is_false(stores.is_store({ claim = print }))
  end)

  it("key: short ids as they are, long ids (and ids posing as hashes) hashed", function()
    assert.equal("evt_1", stores.key("evt_1"))
    local id128 = string.rep("a", 128)
    assert.equal(id128, stores.key(id128))
    local long = string.rep("x", 70 * 1024)
    local k = stores.key(long)
    assert.equal("sha256:" .. require("linqwebhooks.core").sha256_hex(long), k)
    assert.equal(71, #k)
    assert.matches("^sha256:%x+$", k)
    assert.are_not.equal(k, stores.key(long .. "y"))
    -- an id that looks like a key of another id is hashed too: no collision
    assert.are_not.equal(k, stores.key(k))
    assert.has_error(function() stores.key(nil) end, "store.key: argument 'id' must be a string, got nil")
  end)

  it("core.sha256_hex matches the FIPS 180-2 test vectors", function()
    local core = require "linqwebhooks.core"
    assert.equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", core.sha256_hex(""))
    assert.equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", core.sha256_hex("abc"))
    assert.has_error(function() core.sha256_hex({}) end)
  end)
end)
