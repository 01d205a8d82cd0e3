---@meta linqwebhooks.http
-- `require "linqwebhooks.http"`: the libcurl binding (csrc/lua/http.c), the API
-- client's transport outside nginx. Internal; nginx workers never load it.

---@class linqwebhooks.http.ClientOptions
---@field timeout_ms? integer whole request, default 60000
---@field connect_timeout_ms? integer default 10000
---@field ca_file? string PEM file of CAs to trust (default: the system store)
---@field max_body? integer response body cap in bytes, default 8388608
---@field raw_headers? boolean true: headers as one string of "name:value\n" lines
---@field proxy? string nil = libcurl's environment (https_proxy, ALL_PROXY, NO_PROXY), "" = never a proxy, or a proxy URL

---@class linqwebhooks.http.Client
local HttpClient = {}
---One request on the reused easy handle.
---On failure: nil, kind ("timeout"|"connection"|"too_large"), message, detail ("tls"|"not_sent"|nil).
---@param method string
---@param url string
---@param headers table<string, string>|nil
---@param body string|nil
---@param opts? { timeout_ms?: integer, connect_timeout_ms?: integer } overrides for this request
---@return integer|nil status
---@return table<string, string>|string headers_or_kind lowercased names (a string with raw_headers), or the failure kind
---@return string|nil body_or_message
---@return any http_version_or_detail
function HttpClient:request(method, url, headers, body, opts) end
---Idempotent; also __gc / __close.
function HttpClient:close() end

---@class linqwebhooks.http
---@field curl_version string
local http = {}

---@param opts? linqwebhooks.http.ClientOptions
---@return linqwebhooks.http.Client
function http.http_client(opts) end

---@param seconds number blocking sleep
function http.sleep(seconds) end

return http
