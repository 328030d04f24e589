import { describe, expect, it } from 'vitest';
import { ApiError } from '../api/client';
import { strings } from '../i18n';
import { errorText, fieldErrors } from './errors';

const many = new ApiError(400, {
  code: 'invalid_input', message: "'voice.speed' must be a number from 0.5 to 2", field: 'voice.speed', reason: 'range',
  params: { min: '0.5', max: '2' },
  errors: [
    { code: 'invalid_input', message: "'voice.speed' must be a number from 0.5 to 2", field: 'voice.speed', reason: 'range', params: { min: '0.5', max: '2' } },
    { code: 'invalid_input', message: "'name' must not be empty", field: 'name', reason: 'empty', params: {} },
    { code: 'too_large', message: "'tags' is longer", field: 'tags', reason: 'too_long', params: { max: '262144', unit: 'bytes' } },
    { code: 'invalid_input', message: "unknown field 'colour'", field: 'colour', reason: 'unknown_field', params: {} },
  ],
});

describe('server errors in the person\'s language', () => {
  it('marks every field at once, in German with German numbers', () => {
    const out = fieldErrors(strings.de, many, (f) => f !== 'colour');
    expect(out['voice.speed']).toBe('Muss zwischen 0,5 und 2 liegen.');
    expect(out.name).toBe('Darf nicht leer sein.');
    expect(out.tags).toBe('Zu lang: höchstens 262.144 Bytes.');
    expect(out._form).toBe('colour: Unbekanntes Feld.');
  });
  it('says the expected type in words', () => {
    const e = new ApiError(400, { code: 'invalid_input', message: "settings key 'llm.context_size' must be an integer (got a string)",
      field: 'llm.context_size', reason: 'type', params: { expected: 'integer', got: 'string' } });
    expect(fieldErrors(strings.de, e, () => true)['llm.context_size']).toBe('Muss eine ganze Zahl sein.');
    expect(errorText(strings.en, e)).toBe('llm.context_size: Must be a whole number.');
  });
  it('falls back to the code\'s headline with the server\'s words when the reason is unknown', () => {
    const e = new ApiError(503, { code: 'unavailable', message: 'no language model is configured' });
    expect(errorText(strings.de, e)).toBe('Nicht verfügbar (no language model is configured)');
    const odd = new ApiError(400, { code: 'invalid_input', message: 'odd', field: 'x', reason: 'invalid', params: {} });
    expect(errorText(strings.en, odd)).toBe('Not accepted (odd)');
  });
  it('a failed fetch is a connection problem', () => {
    expect(errorText(strings.de, new TypeError('Failed to fetch'))).toBe('Der Server ist nicht erreichbar');
  });
});
