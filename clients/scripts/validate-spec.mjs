// Validates docs/asyncapi.yaml: the AsyncAPI parser (3.0 schema and its rules), then this
// project's conventions: every client action is an operation with one request in `ClientFrame`
// and a reply (or `x-unanswered: true`, the heartbeat's MOCK route); every server frame is in `ServerFrame`; every example validates against its schema.
import { readFileSync } from 'node:fs';
import { Parser } from '@asyncapi/parser';
import { frameSchemas, frameValidators, loadSpec, SPEC_PATH } from './spec.mjs';

const path = process.argv[2] ?? SPEC_PATH;
const text = readFileSync(path, 'utf8');
const { document, diagnostics } = await new Parser().parse(text, { source: path });
const severities = ['error', 'warning', 'info', 'hint'];
for (const d of diagnostics) {
  console.log(`${severities[d.severity]}: ${d.message} at ${d.path.join('.')} (${d.code})`);
}
if (!document || diagnostics.some((d) => d.severity === 0)) {
  console.error(`${path}: invalid AsyncAPI document`);
  process.exit(1);
}

const spec = loadSpec(path);
const problems = [];
const schemaOf = (/** @type {any} */ ref) => {
  const message = spec.components.messages[ref.$ref.split('/').pop()];
  return message.payload.$ref.split('/').pop();
};
const clientSchemas = new Set(frameSchemas(spec, 'ClientFrame', 'action').values());
const serverSchemas = new Set(frameSchemas(spec, 'ServerFrame', 'type').values());
const actions = frameSchemas(spec, 'ClientFrame', 'action');
for (const [name, op] of Object.entries(spec.operations)) {
  if (op.action === 'receive') {
    for (const m of op.messages) {
      const schema = schemaOf(m);
      if (!clientSchemas.has(schema)) problems.push(`operation ${name}: ${schema} is not in ClientFrame`);
      if (spec.components.schemas[schema].properties.action.const !== name) {
        problems.push(`operation ${name}: its request's action is not "${name}"`);
      }
    }
    if (!op.reply && op['x-unanswered'] !== true) {
      problems.push(`operation ${name}: no reply (every client frame gets one unless x-unanswered)`);
    }
    if (op.reply && op['x-unanswered'] === true) {
      problems.push(`operation ${name}: x-unanswered, but it has a reply`);
    }
  }
  for (const m of [...(op.action === 'send' ? op.messages : []), ...(op.reply?.messages ?? [])]) {
    const schema = schemaOf(m);
    if (!serverSchemas.has(schema)) problems.push(`operation ${name}: ${schema} is not in ServerFrame`);
  }
}
for (const action of actions.keys()) {
  if (!spec.operations[action]) problems.push(`action ${action}: no operation of that name`);
}
const validators = frameValidators(spec);
for (const [name, message] of Object.entries(spec.components.messages)) {
  for (const example of message.examples ?? []) {
    const errors = validators.schema(message.payload.$ref.split('/').pop(), example.payload);
    if (errors) problems.push(`example of ${name}: ${JSON.stringify(errors)}`);
  }
}
if (problems.length) {
  for (const p of problems) console.error(`convention: ${p}`);
  process.exit(1);
}
const ops = Object.keys(spec.operations).length;
console.log(`${path}: valid AsyncAPI ${document.version()} (${ops} operations, ${actions.size} client actions, ${serverSchemas.size} server frames)`);
