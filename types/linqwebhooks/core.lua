---@meta linqwebhooks.core
-- The C core (csrc/lua/core.c, verify.c, json.c, fileinfo.c): verification,
-- signing, JSON, the CSPRNG; the module nginx workers load (libcrypto and cJSON
-- only). Internal: applications use `linqwebhooks`; these stubs are for
-- contributors. The libcurl binding is `linqwebhooks.http` and the process
-- helpers `linqwebhooks.process` (http.lua, process.lua next to this file).

---@class linqwebhooks.core
---@field _VERSION string the C core's version
---@field openssl_version string
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

---@param s string
---@return string hex the SHA-256 of `s`, 64 lowercase hex digits
function core.sha256_hex(s) end

---@class linqwebhooks.core.FileInfo
---@field type "file"|"directory"|"other"
---@field mode integer permission bits (e.g. 384 = 0600)
---@field size integer
---@field mtime number seconds (fractional)
---@field ino integer

---One stat(2) call (the secrets file's change and permission checks).
---@param path string
---@return linqwebhooks.core.FileInfo|nil info
---@return string|nil err
function core.file_info(path) end

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

return core
