// The vendor's Node SDK (ecommpay on npm) checks our signed bodies and signs the corpus.
// Run by `cargo xtask interop` with the SDK installed in a throwaway directory under target/.
'use strict';
const fs = require('fs');
const path = require('path');

const [run, sdkDir] = process.argv.slice(2);
const { Callback, signer } = require(path.join(sdkDir, 'node_modules', 'ecommpay'));

const lines = (file) => fs.readFileSync(path.join(run, file), 'utf8').split('\n').filter((l) => l.trim());
const out = [];
for (const line of lines('verify.jsonl')) {
  const item = JSON.parse(line);
  const answer = { id: `verify ${item.id}` };
  try {
    new Callback(item.secret, item.body); // throws on a bad signature
    answer.valid = true;
  } catch (e) {
    answer.valid = false;
    answer.error = String(e);
  }
  out.push(answer);
}
for (const line of lines('sign.jsonl')) {
  const item = JSON.parse(line);
  const answer = { id: `sign ${item.id}` };
  try {
    answer.signature = signer(JSON.parse(item.payload), item.secret);
  } catch (e) {
    answer.error = String(e);
  }
  out.push(answer);
}
fs.writeFileSync(path.join(run, 'node.jsonl'), out.map((a) => JSON.stringify(a)).join('\n') + '\n');
