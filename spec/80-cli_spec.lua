-- `linqwh` driven as a user would: bin/linqwh run as real processes (this
-- run's interpreter and module paths), a real `linqwh listen` receiving what
-- `linqwh trigger` sends, a real `linqwh emulator` for `subscriptions`.
-- (inbox and worker: spec/81-cli_inbox_spec.lua)
local cli = require "support.cli"
local linq = require "linqwebhooks"
local json = require "linqwebhooks.json"
local core = require "linqwebhooks.core"
local samples = require "linqwebhooks.emulator.samples"
local http = require("support.receiver").http

local SECRET = core.new_secret()
local OTHER = core.new_secret()
local API_KEY = "k_" .. require("linqwebhooks.emulator.util").trace_id()

local function lines(s)
  local t = {}
  for l in s:gmatch("[^\n]+") do
    t[#t + 1] = l
  end
  return t
end

local LINE = "^%[%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d%] (%d+) (%S+) (%S+)(.*)$"

local function usage_error(code, out, err, what)
  assert.are.equal(2, code, what .. ": exit 2 expected, got " .. tostring(code) .. "; " .. err)
  assert.are.equal("", out, what)
  assert.truthy(err:find("linqwh: ", 1, true), what .. ": " .. err)
end

describe("linqwh", function()
  teardown(function()
    cli.stop_all()
  end)

  describe("--help", function()
    local commands = {
      {}, { "trigger" }, { "sign" }, { "verify" }, { "listen" }, { "emulator" },
      { "subscriptions" }, { "subscriptions", "list" }, { "subscriptions", "get" },
      { "subscriptions", "create" }, { "subscriptions", "update" }, { "subscriptions", "delete" },
      { "subscriptions", "events" }, { "subscriptions", "plan" }, { "subscriptions", "apply" },
      { "subscriptions", "rotate" }, { "inbox" }, { "inbox", "stats" }, { "inbox", "dead" },
      { "inbox", "replay" }, { "worker" },
    }
    for _, c in ipairs(commands) do
      it("linqwh " .. table.concat(c, " ") .. " --help", function()
        local args = { (table.unpack or unpack)(c) }
        args[#args + 1] = "--help"
        local code, out, err = cli.run(args)
        assert.are.equal(0, code, err)
        assert.are.equal("", err)
        local usage = "Usage: linqwh" .. (#c > 0 and (" " .. table.concat(c, " ")) or "")
        assert.are.equal(usage, out:sub(1, #usage), out)
        assert.truthy(out:find("Options:", 1, true))
      end)
    end
    it("the top-level help lists every command and the exit statuses", function()
      local code, out = cli.run({ "--help" })
      assert.are.equal(0, code)
      for _, c in ipairs(require("linqwebhooks.cli").COMMANDS) do
        assert.truthy(out:find("\n   " .. c .. " ", 1, true), c)
      end
      assert.truthy(out:find("2 bad usage", 1, true))
    end)
  end)

  describe("bad usage exits 2 with a message on stderr", function()
    local cases = {
      { "no command", {} },
      { "unknown command", { "trigerr" } },
      { "unknown option", { "sign", "--secret", SECRET, "--bogus" } },
      { "missing option value", { "sign", "--secret" } },
      { "no secret", { "sign" } },
      { "malformed secret", { "sign", "--secret", "whsec_not base64!" } },
      { "bad scheme", { "sign", "--secret", SECRET, "--scheme", "v2" } },
      { "bad timestamp", { "sign", "--secret", SECRET, "--timestamp", "yesterday" } },
      { "malformed -H", { "verify", "--secret", SECRET, "-H", "no colon here" } },
      { "bad tolerance", { "verify", "--secret", SECRET, "--tolerance", "-1" } },
      { "trigger without --to", { "trigger", "message.received", "--secret", SECRET } },
      { "trigger unknown type", { "trigger", "message.recieved", "--to", "http://127.0.0.1:9/", "--secret", SECRET } },
      { "trigger bad URL", { "trigger", "message.received", "--to", "ftp://x/", "--secret", SECRET } },
      { "trigger bad --data", { "trigger", "message.received", "--to", "http://127.0.0.1:9/",
                                "--secret", SECRET, "--data", "[1,2]" } },
      { "trigger bad --version", { "trigger", "message.received", "--to", "http://127.0.0.1:9/",
                                   "--secret", SECRET, "--version", "2024-01-01" } },
      { "listen bad port", { "listen", "--secret", SECRET, "--port", "70000" } },
      { "listen bad path", { "listen", "--secret", SECRET, "--path", "webhooks" } },
      { "listen unknown event filter", { "listen", "--secret", SECRET, "--events", "message.sentt" } },
      { "emulator bad port", { "emulator", "--port", "x" } },
      { "subscriptions without action", { "subscriptions" } },
      { "subscriptions get without id", { "subscriptions", "get", "--api-key", API_KEY } },
      { "inbox without a backend", { "inbox", "stats" } },
      { "inbox with two backends", { "inbox", "stats", "--sqlite", "/tmp/x.db", "--redis", "redis://127.0.0.1:1" } },
      { "worker without APP.lua", { "worker" } },
      { "worker with a missing APP.lua", { "worker", "/nonexistent/app.lua" } },
    }
    for _, c in ipairs(cases) do
      it(c[1], function()
        local code, out, err = cli.run(c[2], nil, { LINQ_WEBHOOK_SECRET = false,
          LINQ_API_V3_API_KEY = false })
        usage_error(code, out, err, c[1])
      end)
    end
    it("names the command's usage or its --help", function()
      local _, _, err = cli.run({ "sign", "--bogus" })
      assert.truthy(err:find("Usage: linqwh sign", 1, true), err)
      _, _, err = cli.run({ "trigger", "message.recieved", "--to", "http://127.0.0.1:9/", "--secret", SECRET })
      assert.truthy(err:find("did you mean", 1, true), err)
      assert.truthy(err:find("message.received", 1, true), err)
      assert.truthy(err:find("Try 'linqwh trigger --help'", 1, true), err)
    end)
  end)

  describe("sign and verify", function()
    local body = '{"event_type":"message.received","event_id":"e1","data":{}}'

    local function header_args(out)
      local args = {}
      for _, l in ipairs(lines(out)) do
        args[#args + 1] = "-H"
        args[#args + 1] = l
      end
      return args
    end

    it("sign prints both header sets; verify accepts them (exit 0)", function()
      local code, out, err = cli.run({ "sign", "--secret", SECRET, "--id", "msg_1" }, body)
      assert.are.equal(0, code, err)
      local l = lines(out)
      assert.are.equal(5, #l)
      assert.are.equal("webhook-id: msg_1", l[1])
      assert.matches("^webhook%-timestamp: %d+$", l[2])
      assert.matches("^webhook%-signature: v1,%S+$", l[3])
      assert.matches("^X%-Webhook%-Timestamp: %d+$", l[4])
      assert.matches("^X%-Webhook%-Signature: %x+$", l[5])
      -- the same signature the library computes
      local ts = tonumber(l[2]:match("%d+"))
      local want = linq.sign{ secret = SECRET, body = body, id = "msg_1", timestamp = ts, scheme = "both" }
      assert.are.equal("webhook-signature: " .. want["webhook-signature"], l[3])
      assert.are.equal("X-Webhook-Signature: " .. want["X-Webhook-Signature"], l[5])
      local args = { "verify", "--secret", SECRET }
      for _, a in ipairs(header_args(out)) do
        args[#args + 1] = a
      end
      local vcode, vout, verr = cli.run(args, body)
      assert.are.equal(0, vcode, verr)
      assert.matches("^valid: scheme=standard key_index=1 id=msg_1 timestamp=%d+\n$", vout)
    end)

    it("--scheme legacy signs the legacy headers only, and verify checks them", function()
      local code, out = cli.run({ "sign", "--secret", SECRET, "--scheme", "legacy" }, body)
      assert.are.equal(0, code)
      assert.are.equal(2, #lines(out))
      local args = { "verify", "--secret", SECRET }
      for _, a in ipairs(header_args(out)) do
        args[#args + 1] = a
      end
      local vcode, vout = cli.run(args, body)
      assert.are.equal(0, vcode)
      assert.matches("^valid: scheme=legacy", vout)
    end)

    it("verify accepts a rotation keyring (repeated --secret)", function()
      local _, out = cli.run({ "sign", "--secret", SECRET }, body)
      local args = { "verify", "--secret", OTHER, "--secret", SECRET }
      for _, a in ipairs(header_args(out)) do
        args[#args + 1] = a
      end
      local code, vout = cli.run(args, body)
      assert.are.equal(0, code)
      assert.matches("key_index=2", vout)
    end)

    it("a tampered body, another secret, a stale timestamp or no headers exit 1 with the reason", function()
      local _, out = cli.run({ "sign", "--secret", SECRET }, body)
      local hdrs = header_args(out)
      local function verify(secret, b, h, extra)
        local args = { "verify", "--secret", secret }
        for _, a in ipairs(h) do
          args[#args + 1] = a
        end
        for _, a in ipairs(extra or {}) do
          args[#args + 1] = a
        end
        return cli.run(args, b)
      end
      local code, vout, err = verify(SECRET, body .. " ", hdrs)
      assert.are.equal(1, code)
      assert.are.equal("", vout)
      assert.matches("^linqwh: invalid: no_matching_signature: ", err)
      code, _, err = verify(OTHER, body, hdrs)
      assert.are.equal(1, code)
      assert.matches("no_matching_signature", err)
      local _, old = cli.run({ "sign", "--secret", SECRET, "--timestamp", "1000000000" }, body)
      code, _, err = verify(SECRET, body, header_args(old))
      assert.are.equal(1, code)
      assert.matches("^linqwh: invalid: timestamp_too_old: ", err)
      code = verify(SECRET, body, header_args(old), { "--tolerance", "0" })
      assert.are.equal(0, code) -- tolerance 0 disables the time check
      code, _, err = verify(SECRET, body, {})
      assert.are.equal(1, code)
      assert.matches("missing_headers", err)
    end)

    it("the secret can come from LINQ_WEBHOOK_SECRET", function()
      local code, out = cli.run({ "sign", "--id", "msg_2" }, body, { LINQ_WEBHOOK_SECRET = SECRET })
      assert.are.equal(0, code)
      assert.matches("webhook%-id: msg_2", out)
    end)
  end)

  describe("trigger -> listen", function()
    local listener, url

    setup(function()
      listener = cli.spawn({ "listen", "--secret", SECRET, "--port", "0" },
        "listening on (http://%S+)", "err")
      url = listener.match
    end)

    it("delivers a signed sample of every catalogue type, in both payload versions", function()
      local expected = {}
      for _, version in ipairs({ "2026-02-03", "2025-01-01" }) do
        for _, etype in ipairs(linq.EVENT_TYPES) do
          local id = "evt-" .. version .. "-" .. etype:gsub("%.", "-")
          local code, out, err = cli.run({ "trigger", etype, "--to", url, "--secret", SECRET,
                                           "--version", version, "--id", id })
          if samples.data(etype, version) == nil then
            -- no such payload in that version (the emulator's catalogue)
            assert.are.equal(2, code, etype .. " " .. version .. ": " .. err)
            assert.matches("no sample payload", err)
          else
            assert.are.equal(0, code, etype .. " " .. version .. ": " .. err)
            assert.are.equal("200 " .. etype .. " " .. id .. " -> " .. url .. " (ok)\n", out)
            expected[#expected + 1] = { etype, id }
          end
        end
      end
      assert.is_true(#expected >= #linq.EVENT_TYPES)
      local got = cli.wait_for(function()
        local l = lines(listener.stdout())
        return #l >= #expected and l
      end)
      assert.is_table(got, listener.stdout())
      for i, e in ipairs(expected) do
        local status, etype, id, rest = got[i]:match(LINE)
        assert.are.equal("200", status, got[i])
        assert.are.equal(e[1], etype)
        assert.are.equal(e[2], id)
        assert.are.equal("", rest)
      end
    end)

    it("--data replaces the sample's data; a repeated id is answered as a duplicate", function()
      local code, out = cli.run({ "trigger", "message.sent", "--to", url, "--secret", SECRET,
                                  "--id", "evt-dup", "--data", '{"hello":"world"}' })
      assert.are.equal(0, code)
      assert.matches("%(ok%)\n$", out)
      code, out = cli.run({ "trigger", "message.sent", "--to", url, "--secret", SECRET, "--id", "evt-dup" })
      assert.are.equal(0, code)
      assert.matches("%(duplicate%)\n$", out)
      local line = cli.wait_for(function()
        return listener.stdout():match("[^\n]* evt%-dup %(duplicate%)\n")
      end)
      assert.truthy(line, listener.stdout())
    end)

    it("a wrong secret: trigger exits 1 with the 401; listen prints 401 and the reason", function()
      local code, out, err = cli.run({ "trigger", "message.sent", "--to", url, "--secret", OTHER,
                                       "--id", "evt-forged" })
      assert.are.equal(1, code)
      assert.are.equal("", out)
      assert.matches("^linqwh: 401 message%.sent evt%-forged %-> ", err)
      assert.matches("no_matching_signature", err)
      local line = cli.wait_for(function()
        return listener.stdout():match("[^\n]*401[^\n]*\n")
      end)
      assert.truthy(line, listener.stdout())
      local status, etype, id, rest = line:match(LINE)
      assert.are.equal("401", status)
      -- an unverified body is never trusted: no type or id
      assert.are.equal("-", etype)
      assert.are.equal("-", id)
      assert.are.equal(" (no_matching_signature)", rest:gsub("\n$", ""))
    end)

    it("a wrong path or a closed port: exit 1", function()
      local code, _, err = cli.run({ "trigger", "message.sent", "--to", url .. "/x", "--secret", SECRET })
      assert.are.equal(1, code)
      assert.matches("^linqwh: 404 ", err)
      -- the listener shows requests refused before verification too
      assert.truthy(cli.wait_for(function()
        return listener.stdout():find("%] 404 %- %- %(POST /webhooks/x%)\n")
      end), listener.stdout())
      local port = require("support.util").free_port()
      code, _, err = cli.run({ "trigger", "message.sent", "--to", "http://127.0.0.1:" .. port .. "/",
                               "--secret", SECRET })
      assert.are.equal(1, code)
      assert.matches("no answer %(connection", err)
    end)

    it("sends what Linq sends: the v3 envelope, both header sets, X-Webhook-Event", function()
      local rec = require("support.receiver").spawn()
      local ok, err = pcall(function()
        local code, _, cerr = cli.run({ "trigger", "message.received", "--to", rec.url .. "/hook?version=2025-01-01",
                                        "--secret", SECRET, "--id", "evt-raw", "--phone", "+12025550123" })
        assert.are.equal(0, code, cerr)
        local req = rec.wait(1)[1]
        assert.are.equal("POST", req.method)
        assert.are.equal("/hook?version=2025-01-01", req.target)
        local h = req.headers
        assert.are.equal("application/json", h["content-type"])
        assert.are.equal("message.received", h["x-webhook-event"])
        assert.are.equal("evt-raw", h["webhook-id"])
        local std = assert(linq.verify(SECRET, req.body, { ["webhook-id"] = h["webhook-id"],
          ["webhook-timestamp"] = h["webhook-timestamp"], ["webhook-signature"] = h["webhook-signature"] }))
        assert.are.equal("standard", std.scheme)
        local legacy = assert(linq.verify(SECRET, req.body, { ["X-Webhook-Timestamp"] = h["x-webhook-timestamp"],
          ["X-Webhook-Signature"] = h["x-webhook-signature"] }))
        assert.are.equal("legacy", legacy.scheme)
        local doc = json.decode(req.body)
        assert.are.equal("v3", doc.api_version)
        assert.are.equal("2025-01-01", doc.webhook_version) -- from the URL's ?version=
        assert.are.equal("message.received", doc.event_type)
        assert.are.equal("evt-raw", doc.event_id)
        assert.is_string(doc.created_at)
        assert.matches("^%x+$", doc.trace_id)
        assert.is_string(doc.partner_id)
        -- the emulator's sample of that type and payload version
        local keys, want = {}, {}
        for k in pairs(doc.data) do keys[#keys + 1] = k end
        for k in pairs(samples.data("message.received", "2025-01-01", "+12025550123")) do want[#want + 1] = k end
        table.sort(keys)
        table.sort(want)
        assert.are.same(want, keys)
      end)
      rec.stop()
      assert(ok, err)
    end)

    it("stops on SIGTERM", function()
      assert.is_true(listener.stop("TERM"))
      assert.matches("linqwh: stopped %(SIGTERM%)", listener.stderr())
    end)

    it("--json prints one JSON object per line; --events filters; SIGINT stops", function()
      local l = cli.spawn({ "listen", "--secret", SECRET, "--port", "0", "--json", "--events",
                            "message.*,call.ended" }, "listening on (http://%S+)", "err")
      for _, t in ipairs({ "message.read", "reaction.added", "call.ended" }) do
        local code, _, err = cli.run({ "trigger", t, "--to", l.match, "--secret", SECRET,
                                       "--id", "j-" .. t:gsub("%.", "-"), "--data", '{"n":[1,null]}' })
        assert.are.equal(0, code, err)
      end
      cli.run({ "trigger", "message.read", "--to", l.match, "--secret", OTHER })
      assert.truthy(cli.wait_for(function()
        return #lines(l.stdout()) >= 3
      end), l.stdout())
      assert.is_true(l.stop("INT"))
      assert.matches("stopped %(SIGINT%)", l.stderr())
      local got = lines(l.stdout())
      assert.are.equal(3, #got, l.stdout()) -- reaction.added filtered out
      local a, b, c = json.decode(got[1]), json.decode(got[2]), json.decode(got[3])
      assert.are.equal("message.read", a.event_type)
      assert.are.equal("j-message-read", a.event_id)
      assert.are.equal(200, a.status)
      assert.are.equal("standard", a.scheme)
      assert.are.equal(false, a.duplicate)
      assert.are.equal("v3", a.payload.api_version)
      assert.are.equal(json.null, a.payload.data.n[2])
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$", a.time)
      assert.are.equal("call.ended", b.event_type)
      assert.are.equal(401, c.status)
      assert.are.equal("no_matching_signature", c.reason)
      assert.is_nil(c.event_type)
    end)
  end)

  describe("emulator and subscriptions", function()
    local emu, listener, env, sub_id
    local secret_file = os.tmpname()

    setup(function()
      emu = cli.spawn({ "emulator", "--port", "0", "--api-key", API_KEY, "--verbose" },
        "listening on (http://%S+)", "out")
      env = { LINQ_API_V3_API_KEY = API_KEY, LINQ_API_V3_BASE_URL = emu.match .. "/api/partner" }
    end)

    teardown(function()
      os.remove(secret_file)
    end)

    it("list on an empty emulator prints the table header", function()
      local code, out, err = cli.run({ "subscriptions", "list" }, nil, env)
      assert.are.equal(0, code, err)
      assert.matches("^ID%s+ACTIVE%s+URL%s+EVENTS%s+PHONES\n$", out)
    end)

    it("create needs --secret-file or --show-secret (the secret is shown only once)", function()
      local code, out, err = cli.run({ "subscriptions", "create", "--url", "http://127.0.0.1:9/w",
                                       "--events", "message.received" }, nil, env)
      usage_error(code, out, err, "create without secret file")
      assert.matches("only once", err)
    end)

    it("create writes the signing secret to a 0600 file; a listener verifies the emulator's deliveries", function()
      -- the listener must exist first: its URL is the target; its secret comes after create,
      -- so start it on a fixed free port afterwards
      local port = require("support.util").free_port()
      local target = "http://127.0.0.1:" .. port .. "/webhooks"
      local code, out, err = cli.run({ "subscriptions", "create", "--url", target, "--events",
                                       "message.received,message.sent", "--secret-file", secret_file },
                                     nil, env)
      assert.are.equal(0, code, err)
      sub_id = out:match("id:%s+(%S+)")
      assert.truthy(sub_id, out)
      assert.matches("target_url:%s+" .. target:gsub("%p", "%%%0"), out)
      assert.matches("signing_secret:%s+%(written to ", out)
      local new_secret = cli.read(secret_file):match("^(whsec_%S+)\n$")
      assert.truthy(new_secret)
      local mode = io.popen("stat -c %a " .. cli.q(secret_file)):read("*l")
      assert.are.equal("600", mode)
      assert.falsy(out:find(new_secret, 1, true))
      listener = cli.spawn({ "listen", "--secret", new_secret, "--port", tostring(port) },
        "listening on (http://%S+)", "err")
      local res = assert(http("POST", emu.match .. "/_emulator/events", { ["Content-Type"] = "application/json" },
        '{"event_type":"message.received"}'))
      assert.are.equal(202, res.status, res.body)
      local event_id = res.json.event_id
      local line = cli.wait_for(function()
        return listener.stdout():match("[^\n]+\n")
      end)
      assert.truthy(line, listener.stdout())
      local status, etype, id = line:match(LINE)
      assert.are.equal("200", status)
      assert.are.equal("message.received", etype)
      assert.are.equal(event_id, id)
    end)

    it("list (table and --json), get, update, events", function()
      local code, out = cli.run({ "subscriptions", "list" }, nil, env)
      assert.are.equal(0, code)
      assert.matches(sub_id:gsub("%p", "%%%0")
        .. "%s+yes%s+http://127%.0%.0%.1:%d+/webhooks%s+message%.received,message%.sent%s+%-", out)
      code, out = cli.run({ "subscriptions", "list", "--json" }, nil, env)
      assert.are.equal(0, code)
      local list = json.decode(out)
      assert.are.equal(1, #list)
      assert.are.equal(sub_id, list[1].id)
      assert.is_nil(list[1].signing_secret)
      code, out = cli.run({ "subscriptions", "get", sub_id }, nil, env)
      assert.are.equal(0, code)
      assert.matches("is_active:%s+true", out)
      code, out = cli.run({ "subscriptions", "update", sub_id, "--active", "false", "--phone",
                            "+12025551234", "--json" }, nil, env)
      assert.are.equal(0, code)
      local doc = json.decode(out)
      assert.are.equal(false, doc.is_active)
      assert.are.same({ "+12025551234" }, { doc.phone_numbers[1] })
      code, out = cli.run({ "subscriptions", "update", sub_id, "--all-phones", "--events", "message.read" },
        nil, env)
      assert.are.equal(0, code)
      assert.matches("subscribed_events:%s+message%.read\n", out)
      assert.matches("phone_numbers:%s+%-\n", out)
      code, out = cli.run({ "subscriptions", "events" }, nil, env)
      assert.are.equal(0, code)
      assert.truthy(out:find("message.received\n", 1, true))
    end)

    it("API errors exit 1 with the error; bad values exit 2", function()
      local code, out, err = cli.run({ "subscriptions", "get", "no-such-id" }, nil, env)
      assert.are.equal(1, code)
      assert.are.equal("", out)
      assert.matches("NotFoundError", err)
      code, out, err = cli.run({ "subscriptions", "list", "--api-key", "wrong_key_123" }, nil, env)
      assert.are.equal(1, code)
      assert.matches("AuthenticationError", err)
      assert.falsy(err:find("wrong_key_123", 1, true))
      assert.falsy(out:find("wrong_key_123", 1, true))
      code, out, err = cli.run({ "subscriptions", "update", sub_id }, nil, env)
      usage_error(code, out, err, "update without changes")
      code, out, err = cli.run({ "subscriptions", "update", sub_id, "--active", "maybe" }, nil, env)
      usage_error(code, out, err, "update --active maybe")
      code, out, err = cli.run({ "subscriptions", "create", "--url", "ftp://x/", "--events", "message.sent",
                                 "--show-secret" }, nil, env)
      usage_error(code, out, err, "create with a bad URL")
      code, out, err = cli.run({ "subscriptions", "list" }, nil, { LINQ_API_V3_API_KEY = false,
        LINQ_API_V3_BASE_URL = env.LINQ_API_V3_BASE_URL })
      usage_error(code, out, err, "no API key")
      assert.matches("LINQ_API_V3_API_KEY", err)
      -- the flags work as well as the environment
      code = cli.run({ "subscriptions", "list", "--api-key", API_KEY, "--base-url",
                       env.LINQ_API_V3_BASE_URL }, nil, { LINQ_API_V3_API_KEY = false })
      assert.are.equal(0, code)
    end)

    it("create --show-secret --json includes the new secret (asked for); delete removes", function()
      local code, out, err = cli.run({ "subscriptions", "create", "--url", "http://127.0.0.1:9/w2",
                                       "--events", "message.sent", "--show-secret", "--json" }, nil, env)
      assert.are.equal(0, code, err)
      local doc = json.decode(out)
      assert.matches("^whsec_", doc.signing_secret)
      cli.outputs[#cli.outputs] = nil -- (stderr)
      cli.outputs[#cli.outputs] = nil -- this stdout shows a secret on purpose
      for _, id in ipairs({ doc.id, sub_id }) do
        code, out = cli.run({ "subscriptions", "delete", id }, nil, env)
        assert.are.equal(0, code)
        assert.are.equal("deleted " .. id .. "\n", out)
      end
      code = cli.run({ "subscriptions", "get", sub_id }, nil, env)
      assert.are.equal(1, code)
    end)

    it("plan / apply FILE / rotate: subscriptions as code, secrets only in the 0600 file", function()
      local file = os.tmpname()
      local f = assert(io.open(file, "w"))
      f:write('[{"target_url":"http://127.0.0.1:9/as-code","subscribed_events":["message.received"]}]')
      f:close()
      local sfile = os.tmpname()
      os.remove(sfile)
      local code, out, err = cli.run({ "subscriptions", "plan", file }, nil, env)
      assert.are.equal(0, code, err)
      assert.matches("+ create http://127.0.0.1:9/as-code", out, 1, true)
      assert.matches("Plan: 1 to create, 0 to update, 0 to delete", out, 1, true)
      -- a create with nowhere to put the new secret is refused before anything changes
      local _
      code, _, err = cli.run({ "subscriptions", "apply", file }, nil, env)
      assert.are.equal(2, code)
      assert.matches("--secrets-file", err, 1, true)
      code, out, err = cli.run({ "subscriptions", "apply", file, "--secrets-file", sfile }, nil, env)
      assert.are.equal(0, code, err)
      assert.matches("+ create http://127.0.0.1:9/as-code (id ", out, 1, true)
      local info = require("linqwebhooks.core").file_info(sfile)
      assert.are.equal(384, info.mode) -- 0600
      assert.matches("whsec_", (require("support.util").read_file(sfile)), 1, true)
      -- idempotent
      code, out = cli.run({ "subscriptions", "apply", file, "--secrets-file", sfile }, nil, env)
      assert.are.equal(0, code)
      assert.matches("Plan: 0 to create, 0 to update, 0 to delete, 1 unchanged", out, 1, true)
      -- rotate: usage and API errors
      code, _, err = cli.run({ "subscriptions", "rotate", "some-id" }, nil, env)
      assert.are.equal(2, code)
      assert.matches("--secrets-file", err, 1, true)
      code, _, err = cli.run({ "subscriptions", "rotate", "no-such-id", "--secrets-file", sfile }, nil, env)
      assert.are.equal(1, code)
      assert.matches("NotFoundError", err, 1, true)
      os.remove(file)
      os.remove(sfile)
    end)

    it("the emulator logs with --verbose and stops on SIGTERM", function()
      listener.stop()
      assert.is_true(emu.stop())
      local log = emu.stderr()
      assert.matches("POST /api/partner/v3/webhook%-subscriptions %-> 201", log)
      assert.matches("delivery message%.received ", log)
      assert.matches("stopped %(SIGTERM%)", log)
    end)
  end)

  it("never prints a secret or the API key", function()
    cli.stop_all()
    assert.is_true(#cli.outputs > 50)
    for _, o in ipairs(cli.outputs) do
      for _, s in ipairs({ SECRET, OTHER, API_KEY, SECRET:sub(7), API_KEY:sub(3) }) do
        assert.falsy(o:find(s, 1, true), "secret in output: " .. o:sub(1, 300))
      end
    end
  end)
end)
