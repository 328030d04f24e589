// Server errors in the person's language. The server answers {"error":{"code","message","field",
// "reason","params","errors":[...]}} (docs/api.md "Errors"): a form gets every bad field at once,
// each said from its reason and figures; an error without a reason the UI knows is said by its
// code's headline, with the server's own words after it as the detail (`params.detail` when the
// server gives the bare reason apart from the field's name).
import { ApiError, type ApiErrorBody } from '../api/client';
import { format, type Strings } from '../i18n';

// Numbers as the chosen language writes them (0.5 -> "0,5" in German); other text unchanged.
function figure(t: Strings, v: string): string {
  if (!/^-?\d+(\.\d+)?$/.test(v) || Math.abs(Number(v)) > 1e15) return v;
  return Number(v).toLocaleString(t.locale, { maximumFractionDigits: 15 });
}

// One problem as a sentence; null when its reason is not one the UI knows.
export function reasonText(t: Strings, p: ApiErrorBody): string | null {
  const params = p.params ?? {};
  let key = p.reason ?? '';
  if (key === 'too_long') key = params.unit === 'characters' ? 'too_long_characters' : 'too_long_bytes';
  const template = t.err[key];
  if (!template || key === 'invalid') return null;
  const vars: Record<string, string> = {};
  for (const [k, v] of Object.entries(params)) vars[k] = figure(t, String(v));
  if (params.expected) vars.expected = t.errKinds[params.expected] ?? params.expected;
  return format(template, vars);
}

// Any error (thrown by the API client, a failed fetch, anything else) as one line to show.
export function errorText(t: Strings, e: unknown): string {
  if (e instanceof ApiError) {
    const problems = e.body.errors?.length ? e.body.errors : [e.body];
    return problems
      .map((p) => {
        const said = reasonText(t, p);
        if (said) return p.field ? `${p.field}: ${said}` : said;
        const headline = t.err[p.code] ?? t.err.internal;
        const detail = p.params?.detail ?? p.message;
        return detail ? `${headline} (${detail})` : headline;
      })
      .join(' · ');
  }
  if (e instanceof TypeError) return t.err.network;  // fetch() failing: no connection.
  return e instanceof Error ? e.message : String(e);
}

// The problems of a form, by field, for the fields it shows (`shown(field)` true); the others and
// errors with no field go to `_form`, named.
export function fieldErrors(t: Strings, e: unknown, shown: (field: string) => boolean): Record<string, string> {
  if (!(e instanceof ApiError)) return { _form: errorText(t, e) };
  const problems = e.body.errors?.length ? e.body.errors : [e.body];
  const out: Record<string, string> = {};
  const rest: string[] = [];
  for (const p of problems) {
    const said = reasonText(t, p);
    if (p.field && shown(p.field)) {
      const text = said ?? `${t.err[p.code] ?? t.err.internal} (${p.params?.detail ?? p.message})`;
      out[p.field] = out[p.field] ? `${out[p.field]} ${text}` : text;
    } else {
      rest.push(errorText(t, new ApiError(e.status, p)));
    }
  }
  if (rest.length) out._form = rest.join(' · ');
  return out;
}
