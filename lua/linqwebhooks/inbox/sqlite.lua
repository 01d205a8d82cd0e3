--- The SQLite inbox backend: `linq.inbox.sqlite{ path, ... }`.
-- One table `deliveries` in one database file (WAL), shared by every
-- receiver and worker process on one host (not over NFS). Implements the
-- inbox interface documented in lua/linqwebhooks/inbox/init.lua.
--
-- States: pending (available_at = when it may be taken), in_flight (held by
-- `worker` until lease_until), done (kept `ttl` seconds for de-duplication,
-- then purged), dead (kept until replayed). A job's token is the pair
-- (worker, attempts): a worker whose lease was taken over can no longer
-- extend, fail or release it.
local sqlite = require "linqwebhooks.sqlite"
local json = require "linqwebhooks.json"
local options = require "linqwebhooks.options"

local M = {}

local Inbox = {}
Inbox.__index = Inbox
Inbox.__tostring = function(s)
  return "linqwebhooks.inbox.sqlite (" .. (s._db and "open" or "closed") .. ")"
end
M.Inbox = Inbox

local function default_clock()
  local ok, socket = pcall(require, "socket")
  if ok and type(socket) == "table" and socket.gettime then
    return socket.gettime
  end
  return os.time
end

local function check_ms(v)
  if v % 1 ~= 0 or v < 0 or v > 3600000 then
    return false, "must be whole milliseconds from 0 to 3600000"
  end
  return true
end

local function check_ttl(v)
  if v <= 0 or v ~= v or v == math.huge then
    return false, "must be a positive number of seconds"
  end
  return true
end

M.SCHEMA = {
  path = "string",
  clock = "function",
  busy_timeout = { types = { "number" }, check = check_ms },          -- ms, default 5000
  synchronous = { types = { "string" }, enum = { "OFF", "NORMAL", "FULL", "EXTRA" } },
  ttl = { types = { "number" }, check = check_ttl },                 -- done kept, default 86400 s
}

local SCHEMA_SQL = [[
CREATE TABLE IF NOT EXISTS deliveries (
  key          TEXT PRIMARY KEY,
  id           TEXT NOT NULL,
  event_type   TEXT,
  body         BLOB NOT NULL,
  headers      TEXT,
  info         TEXT,
  state        TEXT NOT NULL,
  attempts     INTEGER NOT NULL DEFAULT 0,
  available_at REAL NOT NULL,
  lease_until  REAL,
  worker       TEXT,
  error        TEXT,
  received_at  REAL,
  updated_at   REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_ready ON deliveries (state, available_at);
CREATE INDEX IF NOT EXISTS deliveries_lease ON deliveries (state, lease_until);
CREATE INDEX IF NOT EXISTS deliveries_id ON deliveries (id);
CREATE INDEX IF NOT EXISTS deliveries_updated ON deliveries (state, updated_at);
]]

local SQL = {
  put = [[INSERT INTO deliveries (key, id, event_type, body, headers, info, state, attempts,
            available_at, received_at, updated_at)
          VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', 0, ?7, ?8, ?7)
          ON CONFLICT (key) DO NOTHING]],
  take = [[UPDATE deliveries SET state = 'in_flight', attempts = attempts + 1, worker = ?2,
            lease_until = ?1 + ?3, updated_at = ?1
          WHERE rowid = (SELECT rowid FROM (
              SELECT rowid, available_at FROM (SELECT rowid, available_at FROM deliveries
                WHERE state = 'pending' AND available_at <= ?1 ORDER BY available_at LIMIT 1)
              UNION ALL
              SELECT rowid, available_at FROM (SELECT rowid, available_at FROM deliveries
                WHERE state = 'in_flight' AND lease_until <= ?1 ORDER BY lease_until LIMIT 1))
            ORDER BY available_at LIMIT 1)
          RETURNING key, id, event_type, body, headers, info, attempts, received_at, worker]],
  extend = [[UPDATE deliveries SET lease_until = ?4 + ?5, updated_at = ?4
             WHERE key = ?1 AND state = 'in_flight' AND worker = ?2 AND attempts = ?3]],
  ack = [[UPDATE deliveries SET state = 'done', lease_until = NULL, worker = NULL, error = NULL,
            updated_at = ?2
          WHERE key = ?1 AND state IN ('in_flight', 'pending')]],
  fail_retry = [[UPDATE deliveries SET state = 'pending', available_at = ?4, error = ?5,
                   lease_until = NULL, worker = NULL, updated_at = ?6
                 WHERE key = ?1 AND state = 'in_flight' AND worker = ?2 AND attempts = ?3]],
  fail_dead = [[UPDATE deliveries SET state = 'dead', error = ?4, lease_until = NULL,
                  worker = NULL, updated_at = ?5
                WHERE key = ?1 AND state = 'in_flight' AND worker = ?2 AND attempts = ?3]],
  release = [[UPDATE deliveries SET state = 'pending', attempts = attempts - 1,
                available_at = MIN(available_at, ?4), lease_until = NULL, worker = NULL,
                updated_at = ?4
              WHERE key = ?1 AND state = 'in_flight' AND worker = ?2 AND attempts = ?3]],
  stats = [[SELECT state, count(*) AS n FROM deliveries GROUP BY state]],
  dead = [[SELECT id, key, event_type, attempts, error FROM deliveries
           WHERE state = 'dead' ORDER BY updated_at, rowid]],
  replay = [[UPDATE deliveries SET state = 'pending', attempts = 0, available_at = ?2,
               lease_until = NULL, worker = NULL, error = NULL, updated_at = ?2
             WHERE (id = ?1 OR key = ?1) AND state IN ('dead', 'done')]],
  purge = [[DELETE FROM deliveries WHERE state = 'done' AND updated_at < ?1]],
}

--- linq.inbox.sqlite{ path, clock, busy_timeout = 5000, synchronous = "NORMAL", ttl = 86400 }
function M.new(opts, level)
  level = (level or 1) + 1
  if type(opts) ~= "table" then
    error("linq.inbox.sqlite: options table expected, got " .. type(opts), level)
  end
  options.check("linq.inbox.sqlite", opts, M.SCHEMA, level)
  if opts.path == nil or opts.path == "" then
    error("linq.inbox.sqlite: option 'path' is required (the database file)", level)
  end
  local db, err = sqlite.open(opts.path, opts.busy_timeout or 5000)
  if not db then
    return nil, err
  end
  local ok, serr = db:exec("PRAGMA journal_mode = WAL")
  if ok then
    ok, serr = db:exec("PRAGMA synchronous = " .. (opts.synchronous or "NORMAL"))
  end
  if ok then
    -- several processes may create the schema at once: one writer at a time
    ok, serr = db:exec("BEGIN IMMEDIATE; " .. SCHEMA_SQL .. " COMMIT;")
    if not ok then
      db:exec("ROLLBACK")
    end
  end
  local stmts = {}
  if ok then
    for name, sql in pairs(SQL) do
      stmts[name], serr = db:prepare(sql)
      if not stmts[name] then
        ok = false
        break
      end
    end
  end
  if not ok then
    db:close()
    return nil, "linq.inbox.sqlite: " .. tostring(serr)
  end
  return setmetatable({
    _db = db,
    _st = stmts,
    _clock = opts.clock or default_clock(),
    _ttl = opts.ttl or 86400,
    _purged = -math.huge,
  }, Inbox)
end

local function db_of(self, what)
  local db = self._db
  if not db then
    error("inbox:" .. what .. ": the inbox is closed", 3)
  end
  return db
end

local function check_job(job, what)
  if type(job) ~= "table" or type(job.key) ~= "string" or type(job.token) ~= "string"
     or type(job.attempts) ~= "number" then
    error("inbox:" .. what .. ": argument 'job' must be a job returned by inbox:take", 3)
  end
end

local function check_seconds(v, name, what)
  if type(v) ~= "number" or v ~= v or v <= 0 or v == math.huge then
    error("inbox:" .. what .. ": argument '" .. name .. "' must be a positive number of seconds", 3)
  end
end

local function enc(v)
  if v == nil then
    return nil
  end
  local s = json.encode(v)
  return s
end

--- inbox:put(rec) -> true | false, "duplicate" | nil, err
function Inbox:put(rec)
  local db = db_of(self, "put")
  if type(rec) ~= "table" then
    error("inbox:put: argument 'rec' must be a table, got " .. type(rec), 2)
  end
  for _, k in ipairs({ "key", "id", "body" }) do
    if type(rec[k]) ~= "string" or (k ~= "body" and rec[k] == "") then
      error("inbox:put: field 'rec." .. k .. "' must be a " .. (k == "body" and "" or "non-empty ")
        .. "string", 2)
    end
  end
  if rec.event_type ~= nil and type(rec.event_type) ~= "string" then
    error("inbox:put: field 'rec.event_type' must be a string", 2)
  end
  for _, k in ipairs({ "headers", "info" }) do
    if rec[k] ~= nil and type(rec[k]) ~= "table" then
      error("inbox:put: field 'rec." .. k .. "' must be a table", 2)
    end
  end
  local headers, herr = enc(rec.headers)
  local info, ierr = enc(rec.info)
  if (rec.headers ~= nil and not headers) or (rec.info ~= nil and not info) then
    error("inbox:put: cannot encode headers/info: " .. tostring(herr or ierr), 2)
  end
  local now = self._clock()
  local rows, err = self._st.put:query(rec.key, rec.id, rec.event_type, rec.body, headers, info,
    now, tonumber(rec.received_at) or now)
  if not rows then
    return nil, "inbox put failed: " .. tostring(err)
  end
  if db:changes() == 1 then
    return true
  end
  return false, "duplicate"
end

local function job_of(row)
  local headers = row.headers and json.decode(row.headers) or {}
  local info = row.info and json.decode(row.info) or {}
  return {
    key = row.key,
    id = row.id,
    event_type = row.event_type,
    body = row.body,
    headers = headers,
    info = info,
    attempts = row.attempts,
    received_at = row.received_at,
    token = row.worker,
  }
end

--- inbox:take(worker, visibility) -> job | nil | nil, err
function Inbox:take(worker, visibility)
  local db = db_of(self, "take")
  if type(worker) ~= "string" or worker == "" then
    error("inbox:take: argument 'worker' must be a non-empty string", 2)
  end
  check_seconds(visibility, "visibility", "take")
  local ok, err = db:exec("BEGIN IMMEDIATE")
  if not ok then
    return nil, "inbox take failed: " .. tostring(err)
  end
  local rows
  rows, err = self._st.take:query(self._clock(), worker, visibility)
  if not rows then
    db:exec("ROLLBACK")
    return nil, "inbox take failed: " .. tostring(err)
  end
  ok, err = db:exec("COMMIT")
  if not ok then
    db:exec("ROLLBACK")
    return nil, "inbox take failed: " .. tostring(err)
  end
  if rows[1] then
    return job_of(rows[1])
  end
  return nil
end

local function owned_update(self, what, stmt, job, ...)
  local rows, err = stmt:query(job.key, job.token, job.attempts, ...)
  if not rows then
    return nil, "inbox " .. what .. " failed: " .. tostring(err)
  end
  return self._db:changes() == 1
end

--- inbox:extend(job, visibility) -> true | false (lease lost) | nil, err
function Inbox:extend(job, visibility)
  db_of(self, "extend")
  check_job(job, "extend")
  check_seconds(visibility, "visibility", "extend")
  return owned_update(self, "extend", self._st.extend, job, self._clock(), visibility)
end

local function purge(self, now)
  if now - self._purged >= 60 then
    self._purged = now
    self._st.purge:query(now - self._ttl)
  end
end

--- inbox:ack(job) -> true | nil, err. The delivery is done (also when this
-- worker's lease was taken over meanwhile: the handlers did succeed).
function Inbox:ack(job)
  db_of(self, "ack")
  check_job(job, "ack")
  local now = self._clock()
  local rows, err = self._st.ack:query(job.key, now)
  if not rows then
    return nil, "inbox ack failed: " .. tostring(err)
  end
  purge(self, now)
  return true
end

--- inbox:fail(job, errmsg, retry_at) -> true | nil, err (nil, "lease lost"
-- when another worker holds the delivery now).
function Inbox:fail(job, errmsg, retry_at)
  db_of(self, "fail")
  check_job(job, "fail")
  if errmsg ~= nil and type(errmsg) ~= "string" then
    error("inbox:fail: argument 'errmsg' must be a string or nil", 2)
  end
  if retry_at ~= nil and (type(retry_at) ~= "number" or retry_at ~= retry_at) then
    error("inbox:fail: argument 'retry_at' must be epoch seconds or nil (dead letter)", 2)
  end
  local now = self._clock()
  local ok, err
  if retry_at then
    ok, err = owned_update(self, "fail", self._st.fail_retry, job, retry_at, errmsg, now)
  else
    ok, err = owned_update(self, "fail", self._st.fail_dead, job, errmsg, now)
  end
  if ok == false then
    return nil, "lease lost"
  end
  return ok, err
end

--- inbox:release(job) -> true | nil, err: back to pending now, this
-- attempt not counted.
function Inbox:release(job)
  db_of(self, "release")
  check_job(job, "release")
  local ok, err = owned_update(self, "release", self._st.release, job, self._clock())
  if ok == false then
    return nil, "lease lost"
  end
  return ok, err
end

--- inbox:stats() -> { pending, in_flight, done, dead } | nil, err
function Inbox:stats()
  db_of(self, "stats")
  local rows, err = self._st.stats:query()
  if not rows then
    return nil, "inbox stats failed: " .. tostring(err)
  end
  local s = { pending = 0, in_flight = 0, done = 0, dead = 0 }
  for _, r in ipairs(rows) do
    s[r.state] = r.n
  end
  return s
end

--- inbox:dead() -> array of { id, key, event_type, attempts, error } | nil, err
function Inbox:dead()
  db_of(self, "dead")
  local rows, err = self._st.dead:query()
  if not rows then
    return nil, "inbox dead failed: " .. tostring(err)
  end
  return rows
end

--- inbox:replay(id) -> true | nil, err: a dead (or done) delivery back to
-- pending with attempts reset (id = the event id, or the stored key).
function Inbox:replay(id)
  local db = db_of(self, "replay")
  if type(id) ~= "string" or id == "" then
    error("inbox:replay: argument 'id' must be a non-empty string", 2)
  end
  local rows, err = self._st.replay:query(id, self._clock())
  if not rows then
    return nil, "inbox replay failed: " .. tostring(err)
  end
  if db:changes() == 0 then
    return nil, "no dead or done delivery with id " .. id
  end
  return true
end

--- inbox:close() (idempotent)
function Inbox:close()
  local db = self._db
  if db then
    self._db = nil
    self._st = nil
    db:close() -- finalizes the statements
  end
end
Inbox.__close = Inbox.close
Inbox.__gc = Inbox.close -- (5.4: tables with __gc; the db userdata has its own)

return M
