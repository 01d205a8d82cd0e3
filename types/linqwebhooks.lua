---@meta linqwebhooks
-- LuaLS (lua-language-server) stubs for `require "linqwebhooks"`: types only,
-- never loaded at run time. Add this directory to your editor's
-- `workspace.library` (see types/README.md). Reference: docs/*.md.

---@alias linqwebhooks.Scheme "auto"|"standard"|"legacy"
---@alias linqwebhooks.Headers table<string, string|string[]>|linqwebhooks.HeaderObject request headers; names match case-insensitively

---Any header object with `:get(name)` (lua-http `headers`), asked for lowercase names.
---@class linqwebhooks.HeaderObject
---@field get fun(self: any, name: string): string?, ...
---@field get_as_sequence? fun(self: any, name: string): { n: integer, [integer]: string }

---Options of `linq.verifier{}`, `linq.verify` and (verification part) `linq.webhooks{}`.
---Strict: an unknown key raises.
---@class linqwebhooks.VerifierOptions
---@field secret? string `whsec_` + base64 key: the subscription's `signing_secret`
---@field secrets? string[] up to 16 secrets (a rotation keyring), instead of `secret`
---@field tolerance? integer|false seconds, both ways, inclusive (default 300); false disables
---@field scheme? linqwebhooks.Scheme default "auto"
---@field clock? fun(): number the current time in seconds (default os.time)

---What a successful verification returns (also `event.delivery`).
---@class linqwebhooks.VerifyInfo
---@field scheme "standard"|"legacy"
---@field key_index integer 1-based index of the secret that matched
---@field id? string the `webhook-id` (Standard scheme only)
---@field timestamp integer the signed timestamp

---An error object: returned as the second value of runtime failures.
---`tostring(err)` is `"linqwebhooks: <reason or name>: <message>"`; never holds secrets.
---@class linqwebhooks.Error
---@field kind "verification"|"io"|"handler"|"api"|"connection"|"timeout"|"invalid_request"|string
---@field reason? "missing_headers"|"invalid_headers"|"invalid_timestamp"|"timestamp_too_old"|"timestamp_too_new"|"no_matching_signature"|"invalid_json"|"io_error"|"handler_failed"|string
---@field message string
---@field cause? any handler errors: the raised value
---@field traceback? string handler errors
---@field name? string API errors: `NotFoundError`, `RateLimitError`, ...
---@field status? integer API errors: the HTTP status
---@field code? integer API errors: Linq's numeric error code
---@field trace_id? string
---@field doc_url? string
---@field retry_after? number seconds
---@field attempts? integer how many requests were made

---A verifier: keys pre-keyed in C. See docs/verifier.md.
---@class linqwebhooks.Verifier
local Verifier = {}

---Verifies a delivery: the raw body exactly as received and the request headers.
---@param body string
---@param headers linqwebhooks.Headers
---@return linqwebhooks.VerifyInfo|nil info
---@return linqwebhooks.Error|nil err
function Verifier:verify(body, headers) end

---Verifies, then decodes the signed JSON envelope into an event.
---@param body string
---@param headers linqwebhooks.Headers
---@return linqwebhooks.Event|nil event
---@return linqwebhooks.Error|nil err `reason == "invalid_json"` for a signed body that is not a Linq event
function Verifier:unwrap(body, headers) end

---Verifies a body stored in a file (read in 64 KiB chunks).
---@param path string
---@param headers linqwebhooks.Headers
---@return linqwebhooks.VerifyInfo|nil info
---@return linqwebhooks.Error|nil err
function Verifier:verify_file(path, headers) end

---Incremental verification for bodies that arrive in pieces.
---@param headers linqwebhooks.Headers
---@return linqwebhooks.VerifyStream|nil stream
---@return linqwebhooks.Error|nil err
function Verifier:stream(headers) end

---Wipes the key material now (idempotent; also at garbage collection).
function Verifier:close() end

---@class linqwebhooks.VerifyStream
local VerifyStream = {}
---@param chunk string
---@return linqwebhooks.VerifyStream self
function VerifyStream:update(chunk) end
---@return linqwebhooks.VerifyInfo|nil info
---@return linqwebhooks.Error|nil err
function VerifyStream:finish() end
function VerifyStream:close() end

---A verified Linq event. See docs/dispatcher.md#event-helpers.
---@class linqwebhooks.Event
---@field type string `event_type` from the signed body
---@field id string `event_id` from the signed body
---@field created_at? string
---@field api_version? string
---@field webhook_version? string "2025-01-01" or "2026-02-03"
---@field trace_id? string
---@field partner_id? string
---@field data table the decoded payload (JSON null is `linq.null`)
---@field raw string the raw body
---@field delivery linqwebhooks.VerifyInfo
local Event = {}
---@return string|nil
function Event:chat_id() end
---@return string|nil
function Event:message_id() end
---@return string|nil text the text parts joined with "\n"
function Event:text() end
---@return table[]|nil
function Event:parts() end
---@return string|nil handle phone number or email
function Event:sender() end
---@return boolean|nil
function Event:is_inbound() end
---@return "iMessage"|"SMS"|"RCS"|nil
function Event:service() end

---Options of `linq.webhooks{}` (the verifier's options plus these).
---@class linqwebhooks.HooksOptions: linqwebhooks.VerifierOptions
---@field dedupe? linqwebhooks.Store|boolean default a `linq.store.memory{}`; false disables
---@field strict? boolean default true: registering an unknown exact event type raises
---@field secrets_file? string a secrets file (docs/subscriptions-as-code.md), re-read when it changes; instead of `secret(s)`
---@field endpoint? string with `secrets_file`: only this endpoint's secrets (rotation marker ignored)
---@field inbox? linqwebhooks.Inbox store deliveries and run the handlers in `hooks:work` (instead of `dedupe`; docs/scale-out.md)
---@field log? (fun(level: "warn"|"error", message: string))|false default: nginx's error log or stderr

---What `hooks:handle` returns: answer Linq with `status` and `body`.
---@class linqwebhooks.HandleResult
---@field status 200|400|401|500|503|integer with an inbox: 200 "stored" / "duplicate", 503 not stored
---@field body string
---@field event? linqwebhooks.Event
---@field err? linqwebhooks.Error
---@field duplicate? boolean

---The dispatcher. See docs/dispatcher.md.
---@class linqwebhooks.Hooks
local Hooks = {}
---@param name string exact type, "prefix.*" or "*"
---@param fn fun(event: linqwebhooks.Event)
---@return linqwebhooks.Hooks self
function Hooks:on(name, fn) end
---@param name string
---@param fn fun(event: linqwebhooks.Event)
---@return linqwebhooks.Hooks self
function Hooks:once(name, fn) end
---@param name string
---@param fn? fun(event: linqwebhooks.Event) nil removes every handler of `name`
---@return linqwebhooks.Hooks self
function Hooks:off(name, fn) end
---@param fn fun(err: linqwebhooks.Error, event: linqwebhooks.Event|nil)
---@return linqwebhooks.Hooks self
function Hooks:on_error(fn) end
---Verifies, de-duplicates, decodes and dispatches one delivery.
---@param body string
---@param headers linqwebhooks.Headers
---@return linqwebhooks.HandleResult
function Hooks:handle(body, headers) end
---The first half of `handle`: `run` (when not nil) must be called exactly once.
---@param body string
---@param headers linqwebhooks.Headers
---@param info? linqwebhooks.VerifyInfo skip verification: the body was verified already
---@return linqwebhooks.HandleResult res
---@return (fun(): linqwebhooks.HandleResult)|nil run
function Hooks:prepare(body, headers, info) end
---@return linqwebhooks.Verifier
function Hooks:verifier() end
---@return linqwebhooks.Store|nil
function Hooks:store() end
---@return linqwebhooks.Inbox|nil
function Hooks:inbox() end
---Runs the handlers of `event.type` (verified before, e.g. by an inbox worker);
---no verification or de-duplication.
---@param event linqwebhooks.Event
---@return boolean ok
---@return linqwebhooks.Error[]|nil errs the errors of the handlers that raised
function Hooks:dispatch(event) end
---Runs the handlers of the inbox's deliveries until SIGTERM/SIGINT (or
---`until_idle` / `max_jobs`); raises when the dispatcher has no inbox.
---@param opts? linqwebhooks.WorkOptions
---@return linqwebhooks.WorkStats
function Hooks:work(opts) end
---Inside a handler run by `hooks:work`: renews the delivery's lease.
---@return boolean|nil ok false: another worker took the delivery over
---@return string|nil err e.g. "no delivery is being handled"
function Hooks:heartbeat() end

---@class linqwebhooks.WorkOptions
---@field max_attempts? integer default 10, then a dead letter
---@field backoff? number seconds before the first retry, doubling (default 1)
---@field max_backoff? number cap of the retry delay (default 300)
---@field visibility? number lease seconds: a delivery held by a dead worker is taken over after this (default 60)
---@field until_idle? boolean return when nothing is pending or in flight
---@field worker? string this worker's name, default "<host>:<pid>:<random>"
---@field poll? number seconds to sleep when nothing is ready (default 0.2)
---@field heartbeat? boolean default true: renew the lease while handler Lua code runs
---@field max_jobs? integer return after this many deliveries
---@field clock? fun(): number epoch seconds (tests)
---@field sleep? fun(seconds: number) (tests)

---@class linqwebhooks.WorkStats: linqwebhooks.InboxStats
---@field handled integer
---@field retried integer
---@field dead_lettered integer
---@field released integer
---@field errors integer inbox errors
---@field last_error? string
---@field stopped "SIGTERM"|"SIGINT"|"idle"|"max_jobs"
---@field worker string

---The de-duplication store interface (docs/stores.md); any object with these methods.
---@class linqwebhooks.Store
local Store = {}
---@param key string
---@return boolean|nil claimed true: absent, now in flight; false: see the second value
---@return "seen"|"in_flight"|string|nil state_or_err
function Store:claim(key) end
---@param key string
---@return true|nil ok
---@return string|nil err
function Store:commit(key) end
---@param key string
---@return true|nil ok
---@return string|nil err
function Store:release(key) end
---Optional: renews this caller's claim for another `lease` seconds.
---@param key string
---@return boolean|nil held false: the claim is no longer held
---@return string|nil err
function Store:touch(key) end

---`linq.store.memory{}`: a bounded LRU with expiry, per process.
---@class linqwebhooks.MemoryStore: linqwebhooks.Store
local MemoryStore = {}
---@param key string
---@return "seen"|"in_flight"|nil
function MemoryStore:state(key) end
---@return integer
function MemoryStore:size() end
---@return integer evicted how many handled ids were evicted before their ttl (the store was full)
function MemoryStore:evictions() end
function MemoryStore:clear() end

---`linq.store.shdict(ngx.shared.NAME, opts)`: shared by all nginx workers.
---@class linqwebhooks.ShdictStore: linqwebhooks.Store
local ShdictStore = {}
---@param key string
---@return "seen"|"in_flight"|nil
function ShdictStore:state(key) end

---@class linqwebhooks.MemoryStoreOptions
---@field max? integer default 10000 entries
---@field ttl? number seconds a handled id is remembered (default 1800)
---@field lease? number seconds an in-flight claim lasts (default 60)
---@field clock? fun(): number
---@field log? fun(level: string, msg: string)|false the warning when a full store forgets ids before their ttl (default: the dispatcher's log, or stderr / ngx.log)

---`linq.store.redis{...}`: shared by every process, host and nginx worker.
---@class linqwebhooks.RedisStore: linqwebhooks.Store

---@class linqwebhooks.RedisStoreOptions: linqwebhooks.RedisOptions
---@field prefix? string default "linqwh:"
---@field ttl? number seconds a handled id is remembered (default 1800)
---@field lease? number seconds a claim lasts without renewal (default 60)

---A stored delivery (`inbox:put`).
---@class linqwebhooks.InboxRecord
---@field key string `linq.store.key(id)`
---@field id string the event id
---@field event_type string
---@field body string the raw body
---@field headers table<string, string|string[]> the signature headers (lowercase names)
---@field info linqwebhooks.VerifyInfo
---@field received_at number epoch seconds

---A delivery taken by a worker (`inbox:take`).
---@class linqwebhooks.InboxJob: linqwebhooks.InboxRecord
---@field attempts integer this one included
---@field token any the backend's ownership token

---@class linqwebhooks.InboxStats
---@field pending integer
---@field in_flight integer
---@field done integer
---@field dead integer

---@class linqwebhooks.DeadLetter
---@field id string
---@field key string
---@field event_type string
---@field attempts integer
---@field error string

---The durable inbox interface (docs/scale-out.md, lua/linqwebhooks/inbox/init.lua):
---`linq.inbox.sqlite{}`, `linq.inbox.redis{}`, or any object with these methods.
---@class linqwebhooks.Inbox
local Inbox = {}
---@param rec linqwebhooks.InboxRecord
---@return boolean|nil stored false: a duplicate of a key ever stored
---@return "duplicate"|string|nil err
function Inbox:put(rec) end
---@param worker string
---@param visibility number lease seconds
---@return linqwebhooks.InboxJob|nil job nil and no error: nothing ready
---@return string|nil err
function Inbox:take(worker, visibility) end
---@param job linqwebhooks.InboxJob
---@param visibility number
---@return boolean|nil held false: the lease was lost
---@return string|nil err
function Inbox:extend(job, visibility) end
---@param job linqwebhooks.InboxJob
---@return true|nil ok
---@return string|nil err
function Inbox:ack(job) end
---@param job linqwebhooks.InboxJob
---@param errmsg string
---@param retry_at? number epoch seconds of the next attempt; nil: dead letter
---@return true|nil ok
---@return string|nil err
function Inbox:fail(job, errmsg, retry_at) end
---Pending again at once, the attempt not counted.
---@param job linqwebhooks.InboxJob
---@return true|nil ok
---@return string|nil err
function Inbox:release(job) end
---@return linqwebhooks.InboxStats|nil stats
---@return string|nil err
function Inbox:stats() end
---@return linqwebhooks.DeadLetter[]|nil dead
---@return string|nil err
function Inbox:dead() end
---A dead (or done) delivery back to pending, attempts reset.
---@param id string the event id or the key
---@return true|nil ok
---@return string|nil err
function Inbox:replay(id) end
---Idempotent; also __gc / __close.
function Inbox:close() end

---@class linqwebhooks.SqliteInboxOptions
---@field path string the database file, shared by the processes of one host
---@field synchronous? "NORMAL"|"FULL"|"EXTRA"|"OFF" default "NORMAL"
---@field busy_timeout? integer ms to wait for another process's write lock (default 5000)
---@field ttl? number seconds a done delivery is kept for de-duplication (default 86400)
---@field clock? fun(): number epoch seconds (tests)

---@class linqwebhooks.RedisInboxOptions: linqwebhooks.RedisOptions
---@field prefix? string default "linqwh:" (keys start with prefix .. "inbox:")
---@field ttl? number seconds done deliveries are kept (default 86400)
---@field clock? fun(): number epoch seconds (tests); default Redis's TIME

---@class linqwebhooks.ShdictStoreOptions
---@field ttl? number default 1800
---@field lease? number default 60
---@field prefix? string default "linqwh:"

---Options of `linq.client{}` (strict). See docs/client.md.
---@class linqwebhooks.ClientOptions
---@field api_key? string default `LINQ_API_V3_API_KEY`
---@field base_url? string default `LINQ_API_V3_BASE_URL`, else https://api.linqapp.com/api/partner
---@field timeout? number seconds per attempt (60)
---@field connect_timeout? number seconds (10)
---@field max_retries? integer 0 to 10 (2)
---@field ca_file? string PEM file of CAs to trust
---@field headers? table<string, string>
---@field user_agent? string
---@field allow_http_targets? boolean
---@field max_body? integer bytes (8 MiB)
---@field transport? "curl"|"resty"|table
---@field proxy? string|false a proxy URL, or false for none; nil: libcurl's https_proxy / ALL_PROXY / NO_PROXY (a loopback base_url never uses one)
---@field on_retry? fun(info: linqwebhooks.RetryInfo): boolean|nil called before each retry wait; false gives up
---@field log? fun(level: string, message: string)|false default: a stderr line per retry

---@class linqwebhooks.RetryInfo
---@field attempt integer the attempt that failed (1 = the first request)
---@field max_attempts integer
---@field wait number seconds until the next attempt
---@field method string
---@field path string
---@field status? integer
---@field kind string "api"|"timeout"|"connection"
---@field name string
---@field message string
---@field error linqwebhooks.Error

---@class linqwebhooks.SubscriptionParams
---@field target_url? string
---@field subscribed_events? string[]
---@field phone_numbers? string[]|userdata an array, or `linq.null` to remove the filter
---@field is_active? boolean

---A webhook subscription (docs/client.md). `tostring(sub)` never shows the secret.
---@class linqwebhooks.Subscription
---@field id string
---@field target_url string
---@field subscribed_events string[]
---@field is_active boolean
---@field created_at string
---@field updated_at string
---@field phone_numbers? string[]
---@field signing_secret? string only on the object returned by `create`
local Subscription = {}
---@param params linqwebhooks.SubscriptionParams
---@return linqwebhooks.Subscription|nil self
---@return linqwebhooks.Error|nil err
function Subscription:update(params) end
---@return linqwebhooks.Subscription|nil self
---@return linqwebhooks.Error|nil err
function Subscription:activate() end
---@return linqwebhooks.Subscription|nil self
---@return linqwebhooks.Error|nil err
function Subscription:deactivate() end
---@return linqwebhooks.Subscription|nil self
---@return linqwebhooks.Error|nil err
function Subscription:refresh() end
---@return true|nil ok
---@return linqwebhooks.Error|nil err
function Subscription:delete() end
---@param event_type string
---@return boolean
function Subscription:subscribes_to(event_type) end

---`client.webhook_subscriptions`
---@class linqwebhooks.SubscriptionsResource
local Subscriptions = {}
---@param params linqwebhooks.SubscriptionParams target_url and subscribed_events required
---@return linqwebhooks.Subscription|nil sub with `signing_secret`
---@return linqwebhooks.Error|nil err
function Subscriptions:create(params) end
---@return linqwebhooks.Subscription[]|nil subs
---@return linqwebhooks.Error|nil err
function Subscriptions:list() end
---@param id string
---@return linqwebhooks.Subscription|nil sub
---@return linqwebhooks.Error|nil err
function Subscriptions:retrieve(id) end
---@param id string
---@param params linqwebhooks.SubscriptionParams
---@return linqwebhooks.Subscription|nil sub
---@return linqwebhooks.Error|nil err
function Subscriptions:update(id, params) end
---@param id string
---@return true|nil ok
---@return linqwebhooks.Error|nil err
function Subscriptions:delete(id) end
---Desired state: a field-by-field plan (docs/subscriptions-as-code.md).
---@param desired { target_url: string, subscribed_events: string[], phone_numbers?: string[], is_active?: boolean }[]
---@return { create: table[], update: { sub: linqwebhooks.Subscription, changes: table }[], delete: linqwebhooks.Subscription[], unchanged: linqwebhooks.Subscription[], rotating: linqwebhooks.Subscription[] }|nil plan
---@return linqwebhooks.Error|nil err
function Subscriptions:plan(desired) end
---@param desired table[] as for plan
---@param opts? { prune?: boolean, on_secret?: fun(sub: linqwebhooks.Subscription, secret: string), secrets_file?: string }
---@return table|nil done the plan carried out
---@return linqwebhooks.Error|nil err `err.done`: what was carried out before the failure
function Subscriptions:apply(desired, opts) end
---Secret rotation with an overlap window; resumable (state in the secrets file).
---@param sub_or_id linqwebhooks.Subscription|string
---@param opts { secrets_file?: string, on_secret?: fun(new_sub: linqwebhooks.Subscription, secret: string), confirm?: fun(new_sub: linqwebhooks.Subscription): boolean, timeout?: number, poll?: number, grace?: number, on_step?: fun(step: string, info: table) }
---@return linqwebhooks.Subscription|nil new_sub
---@return linqwebhooks.Error|nil err
function Subscriptions:rotate(sub_or_id, opts) end

---`client.webhook_events`
---@class linqwebhooks.EventsResource
local Events = {}
---@return { events: string[], doc_url: string }|nil res
---@return linqwebhooks.Error|nil err
function Events:list() end

---The API client (docs/client.md).
---@class linqwebhooks.Client
---@field webhook_subscriptions linqwebhooks.SubscriptionsResource
---@field webhook_events linqwebhooks.EventsResource
local Client = {}
---Frees the connection (idempotent); using a closed client raises.
function Client:close() end

---@class linqwebhooks.SignOptions
---@field secret? string
---@field secrets? string[]
---@field body string
---@field id? string default a random `msg_...`
---@field timestamp? integer default os.time()
---@field scheme? "standard"|"legacy"|"both"

---@class linqwebhooks
---@field VERSION string
---@field null userdata JSON null (e.g. `phone_numbers = linq.null`)
---@field EVENT_TYPES string[] every documented event type
---@field events linqwebhooks.events the catalogue (`require "linqwebhooks.events"`)
---@field errors table the error constructors (linqwebhooks.errors)
local linq = {}

---@param opts linqwebhooks.VerifierOptions
---@return linqwebhooks.Verifier
function linq.verifier(opts) end

---One-shot `linq.verifier(opts):verify(body, headers)`.
---@param secret_or_secrets string|string[]
---@param body string
---@param headers linqwebhooks.Headers
---@param opts? linqwebhooks.VerifierOptions
---@return linqwebhooks.VerifyInfo|nil info
---@return linqwebhooks.Error|nil err
function linq.verify(secret_or_secrets, body, headers, opts) end

---Signs a body the way Linq does (tests, emulators, senders).
---@param opts linqwebhooks.SignOptions
---@return table<string, string> headers
function linq.sign(opts) end

---@param opts linqwebhooks.HooksOptions
---@return linqwebhooks.Hooks
function linq.webhooks(opts) end

---@param opts? linqwebhooks.ClientOptions
---@return linqwebhooks.Client
function linq.client(opts) end

linq.store = {}

---@param opts? linqwebhooks.MemoryStoreOptions
---@return linqwebhooks.MemoryStore
function linq.store.memory(opts) end

---@param dict table `ngx.shared.NAME`
---@param opts? linqwebhooks.ShdictStoreOptions
---@return linqwebhooks.ShdictStore
function linq.store.shdict(dict, opts) end

---Does not connect when built.
---@param opts linqwebhooks.RedisStoreOptions
---@return linqwebhooks.RedisStore
function linq.store.redis(opts) end

---The bounded key a store gets for an event id (the id up to 128 bytes, else "sha256:" .. hex).
---@param event_id string
---@return string
function linq.store.key(event_id) end

linq.inbox = {}

---@param opts linqwebhooks.SqliteInboxOptions
---@return linqwebhooks.Inbox|nil inbox
---@return string|nil err the database cannot be opened
function linq.inbox.sqlite(opts) end

---Does not connect when built.
---@param opts linqwebhooks.RedisInboxOptions
---@return linqwebhooks.Inbox|nil inbox
---@return string|nil err
function linq.inbox.redis(opts) end

return linq
