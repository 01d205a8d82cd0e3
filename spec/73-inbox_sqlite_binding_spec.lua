-- linqwebhooks.sqlite: the minimal libsqlite3 binding under the SQLite inbox.
local sqlite = require "linqwebhooks.sqlite"

describe("linqwebhooks.sqlite", function()
  local db
  before_each(function()
    db = assert(sqlite.open(":memory:"))
  end)
  after_each(function()
    db:close()
  end)

  it("reports its sqlite version", function()
    assert.matches("^3%.%d+", sqlite.sqlite_version)
  end)

  it("exec runs several statements; query returns rows keyed by column, NULL absent", function()
    assert.is_true(db:exec("CREATE TABLE t (a, b, c); INSERT INTO t VALUES (1, 'x', NULL);"))
    local rows = assert(db:query("SELECT a, b, c FROM t"))
    assert.same({ { a = 1, b = "x" } }, rows)
    assert.equal(1, db:changes())
    assert.equal(1, db:last_insert_rowid())
  end)

  it("binds nil, booleans, integers, floats and binary strings", function()
    assert.is_true(db:exec("CREATE TABLE t (v)"))
    local st = assert(db:prepare("INSERT INTO t VALUES (?)"))
    for _, v in ipairs({ true, 42, 1.5, "a\0b", -7 }) do
      assert.same({}, assert(st:query(v)))
    end
    assert(st:query(nil))
    local rows = assert(db:query("SELECT v FROM t ORDER BY rowid"))
    assert.equal(1, rows[1].v)
    assert.equal(42, rows[2].v)
    assert.equal(1.5, rows[3].v)
    assert.equal("a\0b", rows[4].v)
    assert.equal(-7, rows[5].v)
    assert.is_nil(rows[6].v)
    if math.type then
      assert.equal("integer", math.type(rows[2].v))
    end
  end)

  it("returns nil, err for SQL errors and a wrong parameter count", function()
    local ok, err = db:query("SELECT * FROM missing")
    assert.is_nil(ok)
    assert.matches("no such table", err)
    ok, err = db:exec("NOT SQL")
    assert.is_nil(ok)
    assert.matches("syntax error", err)
    ok, err = db:query("SELECT ?, ?", 1)
    assert.is_nil(ok)
    assert.matches("expected 2 parameter", err)
    ok, err = db:query("SELECT 1; SELECT 2")
    assert.is_nil(ok)
    assert.matches("one statement expected", err)
    ok, err = sqlite.open("/nonexistent-dir/x/y.db")
    assert.is_nil(ok)
    assert.matches("unable to open", err)
  end)

  it("raises for bad argument types", function()
    assert.has_error(function() db:query("SELECT ?", {}) end)
    assert.has_error(function() db:query({}) end)
    assert.has_error(function() sqlite.open(":memory:", -1) end)
  end)

  it("close is idempotent and finalizes the statements; use after close raises", function()
    local st = assert(db:prepare("SELECT 1 AS one"))
    assert.same({ { one = 1 } }, st:query())
    db:close()
    db:close()
    assert.matches("closed", tostring(db))
    assert.has_error(function() st:query() end,
      "stmt:query: the statement is finalized (or its database closed)")
    assert.has_error(function() db:query("SELECT 1") end, "db:query: the database is closed")
    st:close()
    st:close()
    db = assert(sqlite.open(":memory:"))
  end)

  it("garbage collection of statements and databases is safe in any order", function()
    for _ = 1, 50 do
      local d = assert(sqlite.open(":memory:"))
      local s1 = assert(d:prepare("SELECT 1"))
      local _ = assert(d:prepare("SELECT 2"))
      s1:close()
    end
    collectgarbage()
    collectgarbage()
  end)
end)
