// Runs the official Node SDK's webhooks.unwrap on recorded deliveries, for
// spec/30-sdk_unwrap_spec.lua.
//
//   node spec/support/sdk_unwrap.js SDK_DIR RECORDS.json
//
// SDK_DIR: the installed package (build/node/node_modules/@linqapp/sdk).
// RECORDS.json: [{ "body": "<raw body>", "headers": {name: value}, "secret": "whsec_..." }, ...]
// Prints one JSON array: per record { ok, error?, event_type?, event_id?,
// webhook_version?, bytes? } (bytes: the body's UTF-8 length Node saw).
// A record is ok only when BOTH ways of giving the key succeed: the client's
// `webhookSecret` option and the per-call `key` argument (on a client without
// a secret).
'use strict';
const fs = require('fs');
const path = require('path');

const [sdkDir, recordsPath] = process.argv.slice(2);
if (!sdkDir || !recordsPath) {
  process.stderr.write('usage: sdk_unwrap.js SDK_DIR RECORDS.json\n');
  process.exit(2);
}
const { LinqAPIV3 } = require(path.resolve(sdkDir));
const records = JSON.parse(fs.readFileSync(recordsPath, 'utf8'));

// The clients never make a request: a dead loopback base URL, a dummy key.
const opts = { apiKey: 'unused', baseURL: 'http://127.0.0.1:9/v3' };
const keyless = new LinqAPIV3({ ...opts, webhookSecret: null });
const bySecret = new Map();

function describe(err) {
  return (err && (err.name + ': ' + err.message)) || String(err);
}

const out = records.map((r) => {
  if (typeof r.body !== 'string' || typeof r.headers !== 'object' || r.headers === null) {
    return { ok: false, error: 'bad record' };
  }
  let client = bySecret.get(r.secret);
  if (!client) {
    client = new LinqAPIV3({ ...opts, webhookSecret: r.secret });
    bySecret.set(r.secret, client);
  }
  let a, b;
  try {
    a = client.webhooks.unwrap(r.body, { headers: r.headers });
  } catch (err) {
    return { ok: false, error: 'webhookSecret: ' + describe(err) };
  }
  try {
    b = keyless.webhooks.unwrap(r.body, { headers: r.headers, key: r.secret });
  } catch (err) {
    return { ok: false, error: 'key: ' + describe(err) };
  }
  if (!a || typeof a !== 'object' || JSON.stringify(a) !== JSON.stringify(b)) {
    return { ok: false, error: 'the two unwraps disagree' };
  }
  return { ok: true, event_type: a.event_type, event_id: a.event_id,
           webhook_version: a.webhook_version, bytes: Buffer.byteLength(r.body, 'utf8') };
});
process.stdout.write(JSON.stringify(out) + '\n');
