// Bundled with the project by framefarm's bridge (bridge.mjs), after Remotion's own entry:
// checks the input props against the composition's zod schema before any frame is drawn
// (Remotion checks them only in its studio), and tells which compositions declare one.
// Errors carry their details as base64 JSON behind FRAMEFARM_ERROR< >, which the bridge
// finds again in whatever Remotion wraps around them.
import {getInputProps, Internals} from 'remotion';

const fail = (detail) => {
  const json = JSON.stringify(detail);
  const base64 = btoa(String.fromCharCode(...new TextEncoder().encode(json)));
  throw new Error(`${detail.message} FRAMEFARM_ERROR<${base64}>`);
};

const registered = () => Internals.compositionsRef.current?.getCompositions() ?? [];

const issuesOf = (error) =>
  (error?.issues ?? []).map((issue) => ({
    path: (issue.path ?? []).map(String).join('.'),
    message: issue.message,
  }));

const calculate = window.remotion_calculateComposition;
if (calculate) {
  window.remotion_calculateComposition = async (id) => {
    const compositions = registered();
    const composition = compositions.find((c) => c.id === id);
    if (!composition) {
      const available = compositions.map((c) => c.id);
      fail({
        step: 'composition',
        message: `unknown composition '${id}' (available: ${available.join(', ') || 'none'})`,
        available,
      });
    }
    console.log(`FRAMEFARM_SCHEMAS ${JSON.stringify({[id]: Boolean(composition.schema)})}`);
    if (composition.schema && typeof composition.schema.safeParse === 'function') {
      const props = {...(composition.defaultProps ?? {}), ...(getInputProps() ?? {})};
      const checked = composition.schema.safeParse(props);
      if (!checked.success) {
        const issues = issuesOf(checked.error);
        fail({
          step: 'props',
          message: `props invalid: ${issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ')}`,
          issues,
        });
      }
    }
    return calculate(id);
  };
}

const list = window.getStaticCompositions;
if (list) {
  window.getStaticCompositions = async () => {
    const schemas = Object.fromEntries(registered().map((c) => [c.id, Boolean(c.schema)]));
    console.log(`FRAMEFARM_SCHEMAS ${JSON.stringify(schemas)}`);
    return list();
  };
}
