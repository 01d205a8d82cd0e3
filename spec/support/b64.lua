-- Test helper: standard base64 (the C core's OpenSSL encoder), to build
-- random "whsec_" secrets.
return require("linqwebhooks.core").base64_encode
