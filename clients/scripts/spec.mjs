// The AsyncAPI spec (docs/asyncapi.yaml) as frame validators, for the spec check and the SDK tests.
//
// Frames are found through the spec's two lists: `ClientFrame` (each schema names its `action`)
// and `ServerFrame` (each names its `type`). A frame is validated against the one schema its
// `action` or `type` selects, so an error says what is wrong with that frame, not with 13.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import yaml from 'js-yaml';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';

/** @type {any} */
const addFormats = addFormatsModule;

export const SPEC_PATH = fileURLToPath(new URL('../../docs/asyncapi.yaml', import.meta.url));
const ID = 'urn:messenger:asyncapi';

/** The spec as a plain object. */
export function loadSpec(path = SPEC_PATH) {
  return /** @type {any} */ (yaml.load(readFileSync(path, 'utf8')));
}

/**
 * The schema names of a list (`ClientFrame` or `ServerFrame`), keyed by the `const` of their
 * `key` property (`action` or `type`).
 */
export function frameSchemas(spec, list, key) {
  const schemas = spec.components.schemas;
  /** @type {Map<string, string>} */
  const byConst = new Map();
  for (const { $ref } of schemas[list].oneOf) {
    const name = $ref.replace('#/components/schemas/', '');
    const value = schemas[name]?.properties?.[key]?.const;
    if (typeof value !== 'string') throw new Error(`${list}: ${name} has no ${key} const`);
    if (byConst.has(value)) throw new Error(`${list}: ${key} ${value} twice`);
    byConst.set(value, name);
  }
  return byConst;
}

/** Validators for client and server frames: each returns null when valid, else the errors. */
export function frameValidators(spec = loadSpec()) {
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addSchema({ $id: ID, components: { schemas: spec.components.schemas } });
  const compile = (/** @type {string} */ list, /** @type {string} */ key) => {
    const validators = new Map();
    for (const [value, name] of frameSchemas(spec, list, key)) {
      validators.set(value, { name, validate: ajv.compile({ $ref: `${ID}#/components/schemas/${name}` }) });
    }
    return (/** @type {any} */ frame) => {
      const entry = validators.get(frame?.[key]);
      if (!entry) return [`${key} ${JSON.stringify(frame?.[key])} is not in the spec's ${list}`];
      if (entry.validate(frame)) return null;
      return entry.validate.errors.map(
        (/** @type {any} */ e) => `${entry.name}${e.instancePath || ''} ${e.message} ${JSON.stringify(e.params)}`,
      );
    };
  };
  return {
    client: compile('ClientFrame', 'action'),
    server: compile('ServerFrame', 'type'),
    /** Validates `value` against any schema of the spec. */
    schema(/** @type {string} */ name, /** @type {unknown} */ value) {
      const validate = ajv.getSchema(`${ID}#/components/schemas/${name}`);
      if (!validate) throw new Error(`no schema ${name}`);
      return validate(value) ? null : validate.errors;
    },
  };
}
