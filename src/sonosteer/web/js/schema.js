// Reading the bridge's settings JSON Schema (GET /api/settings/schema): the choices and ranges
// of a setting, so the controls offer exactly what the server accepts.

function resolve(root, node) {
  let cur = node;
  for (let i = 0; cur && cur.$ref && i < 16; i++) {
    const keys = cur.$ref.replace(/^#\//, "").split("/");
    cur = keys.reduce((o, k) => (o ? o[k] : undefined), root);
  }
  return cur;
}

/** The sub-schema of the setting at `keys` (e.g. ["blocks", "mid.0", "stage", "left"]). */
export function schemaAt(root, keys) {
  let node = resolve(root, root);
  for (const key of keys) {
    if (!node) return undefined;
    if (node.anyOf) node = resolve(root, node.anyOf.find((s) => resolve(root, s).type === "object") || node.anyOf[0]);
    if (node.properties && key in node.properties) node = resolve(root, node.properties[key]);
    else if (node.additionalProperties && typeof node.additionalProperties === "object") node = resolve(root, node.additionalProperties);
    else return undefined;
  }
  return node;
}

/** The allowed values of an enumerated setting, or `fallback`. */
export function enumAt(root, keys, fallback) {
  const s = root && schemaAt(root, keys);
  return (s && s.enum) || fallback;
}

/** {min, max} of a numeric setting, or `fallback`. */
export function rangeAt(root, keys, fallback) {
  const s = root && schemaAt(root, keys);
  if (!s) return fallback;
  const min = s.minimum ?? s.exclusiveMinimum ?? fallback.min;
  const max = s.maximum ?? (s.exclusiveMaximum !== undefined ? s.exclusiveMaximum - 1 : fallback.max);
  return { min, max };
}

/** A settings object built from the schema's defaults (used by the in-browser mock server). */
export function defaultsOf(root, node = root) {
  node = resolve(root, node);
  if (!node) return undefined;
  if (node.default !== undefined) return structuredClone(node.default);
  if (node.type === "object" && node.properties) {
    const out = {};
    for (const [k, v] of Object.entries(node.properties)) out[k] = defaultsOf(root, v);
    return out;
  }
  return undefined;
}
