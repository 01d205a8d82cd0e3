---@meta linqwebhooks.core
-- The C core (csrc/lua/*.c). Internal: applications use `linqwebhooks`; these
-- stubs are for contributors. After the planned split, the libcurl binding
-- moves to `linqwebhooks.http` and the process helpers to
-- `linqwebhooks.process` (see http.lua, process.lua next to this file).

---@class linqwebhooks.core
---@field _VERSION string the C core's version
---@field openssl_version string
---@field curl_version string
---@field cjson_version string
---@field null userdata JSON null (`linq.null`)
---@field json_array_mt table metatable marking decoded JSON arrays
local core = {}

---A keyring: the secrets, decoded and pre-keyed (HMAC-SHA256). Raises on a bad secret.
---@param secrets string[]
---@return linqwebhooks.core.Keyring
function core.keyring(secrets) end

---The `verify` method of a verifier, bound in C to one keyring and policy.
---@param kr linqwebhooks.core.Keyring
---@param scheme integer 0 auto, 1 standard, 2 legacy
---@param tolerance integer|nil seconds; nil disables the window
---@param clock (fun(): number)|nil nil = the system clock
---@param error_mt table metatable of the error objects
---@return fun(self: any, body: string, headers: table): (linqwebhooks.VerifyInfo|nil), (linqwebhooks.Error|nil)
function core.bind_verify(kr, scheme, tolerance, clock, error_mt) end

---@param n integer
---@return string bytes from the OpenSSL CSPRNG
function core.random_bytes(n) end

---@return string secret a new `whsec_` secret of 32 random bytes
function core.new_secret() end

---@param s string
---@return string
function core.base64_encode(s) end

---@param s string
---@return any|nil value
---@return string|nil err
function core.json_decode(s) end

---@param v any
---@return string|nil json
---@return string|nil err
function core.json_encode(v) end

---@return number ns monotonic clock, nanoseconds
function core.now_ns() end

---@class linqwebhooks.core.Keyring
local Keyring = {}
---@param path string
---@param headers table
---@param scheme integer 0 auto, 1 standard, 2 legacy
---@param now integer
---@param tolerance integer|nil
---@return linqwebhooks.VerifyInfo|nil info
---@return string|nil reason
---@return string|nil detail
function Keyring:verify_file(path, headers, scheme, now, tolerance) end
---@param headers table
---@param scheme integer
---@param now integer
---@param tolerance integer|nil
---@return userdata|nil stream with update(chunk) and finish()
---@return string|nil reason
---@return string|nil detail
function Keyring:stream(headers, scheme, now, tolerance) end
---@param index integer 1-based key
---@param id string
---@param timestamp string
---@param body string
---@return string|nil signature `v1,<base64>`
---@return string|nil err
function Keyring:sign_standard(index, id, timestamp, body) end
---@param index integer
---@param timestamp string
---@param body string
---@return string signature 64 hex characters
function Keyring:sign_legacy(index, timestamp, body) end
function Keyring:close() end

---libcurl (today in the core; `linqwebhooks.http` after the split).
---@param opts table timeout, connect_timeout, ca_file, max_body, user_agent
---@return linqwebhooks.core.HttpClient
function core.http_client(opts) end

---@param seconds number blocking sleep
function core.sleep(seconds) end

---@class linqwebhooks.core.HttpClient
local HttpClient = {}
---@param method string
---@param url string
---@param headers table<string, string>|nil
---@param body string|nil
---@return integer|nil status
---@return string raw_headers_or_kind
---@return string|nil body_or_message
---@return any http_version_or_detail
function HttpClient:request(method, url, headers, body) end
function HttpClient:close() end

-- Process helpers (today in the core; `linqwebhooks.process` after the split).

---@return boolean installed installs SIGTERM/SIGINT watchers
function core.signal_watch() end
---@return string|nil name the signal received since the last call
function core.signal_pending() end
---@return integer
function core.getpid() end
---@param pid integer
---@param sig "TERM"|"KILL"|"INT"|0
---@return boolean|nil ok
---@return string|nil err
function core.kill(pid, sig) end
---@param path string
---@param mode integer
---@return boolean|nil ok
---@return string|nil err
function core.chmod(path, mode) end

return core
