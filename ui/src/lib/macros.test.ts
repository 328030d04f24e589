import { describe, expect, it } from 'vitest';
import { fillMacros } from './macros';

describe('fillMacros', () => {
  it('fills {{char}} and {{user}} in any case, and the old <BOT>/<USER> forms', () => {
    expect(fillMacros('*winkt* Hallo {{user}}! Ich bin {{Char}}.', 'Mia', 'Alex')).toBe('*winkt* Hallo Alex! Ich bin Mia.');
    expect(fillMacros('<USER> und <bot>', 'Mia', 'Alex')).toBe('Alex und Mia');
  });
  it('leaves other text alone, and names with $ signs are taken literally', () => {
    expect(fillMacros('no macros here', 'Mia', 'Alex')).toBe('no macros here');
    expect(fillMacros('{{user}} {{other}}', 'Mia', '$& $1')).toBe('$& $1 {{other}}');
  });
});
