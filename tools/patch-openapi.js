#!/usr/bin/env node
// Writes the contract used by spec/30-contract_prism_spec.lua: the Feb-2026
// Linq OpenAPI spec (data/linq-openapi-2026-02.yaml) patched with
//   1. today's event list (data/linq-events.json) as the WebhookEventType enum;
//   2. the seed's additions: `phone_numbers` (null or an array of E.164
//      numbers; null = every line) on the subscription create/update requests
//      and on both subscription responses;
//   3. WebhookEventsResult.doc_url without its `const`: Linq moved the page
//      (apidocs.linqapp.com/documentation/webhook-events in Feb 2026,
//      docs.linqapp.com/guides/webhooks/events in the Aug 2026 Go SDK); it stays
//      a required URI.
// Usage: node tools/patch-openapi.js [SPEC.yaml] [EVENTS.json] [OUT.json]
// Needs js-yaml (installed with Prism by `make prism` into build/node).
'use strict';
const fs = require('fs');
const path = require('path');
const root = path.resolve(__dirname, '..');
let yaml;
try {
  yaml = require(path.join(root, 'build/node/node_modules/js-yaml'));
} catch (e) {
  yaml = require('js-yaml');
}

const specPath = process.argv[2] || path.join(root, 'data/linq-openapi-2026-02.yaml');
const eventsPath = process.argv[3] || path.join(root, 'data/linq-events.json');
const outPath = process.argv[4] || path.join(root, 'build/openapi-contract.json');

const spec = yaml.load(fs.readFileSync(specPath, 'utf8'));
const catalogue = JSON.parse(fs.readFileSync(eventsPath, 'utf8'));
const s = spec.components.schemas;
function need(name) {
  if (!s[name]) throw new Error('spec has no components.schemas.' + name);
  return s[name];
}

// 1. today's event list
need('WebhookEventType').enum = catalogue.events.map((e) => e.name);

// 2. phone_numbers (the seed's addition)
const phones = {
  type: ['array', 'null'],
  description: 'Lines (E.164) whose events this subscription receives; null = every line.',
  items: { type: 'string', pattern: '^\\+[1-9][0-9]{1,14}$' },
};
for (const name of ['CreateWebhookSubscriptionRequest', 'UpdateWebhookSubscriptionRequest',
                    'WebhookSubscriptionResponse', 'WebhookSubscriptionCreatedResponse']) {
  const sch = need(name);
  sch.properties = sch.properties || {};
  sch.properties.phone_numbers = phones;
}

// 3. doc_url moved
delete need('WebhookEventsResult').properties.doc_url.const;

spec.info.description = 'Feb-2026 Linq Partner API spec patched by tools/patch-openapi.js '
  + '(event list of ' + catalogue.events.length + ' types, phone_numbers, doc_url).';
fs.mkdirSync(path.dirname(outPath), { recursive: true });
fs.writeFileSync(outPath, JSON.stringify(spec, null, 1) + '\n');
process.stderr.write(outPath + ': ' + catalogue.events.length + ' event types\n');
