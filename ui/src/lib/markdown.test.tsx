import { describe, expect, it } from 'vitest';
import { renderToStaticMarkup } from 'react-dom/server';
import { Markdown, parseInline, searchWords } from './markdown';

const html = (text: string) => renderToStaticMarkup(<Markdown text={text} />);

describe('emotes', () => {
  it('styles *emotes* apart and keeps their text', () => {
    expect(parseInline('Hallo *lächelt* du')).toEqual([
      { t: 'text', v: 'Hallo ' },
      { t: 'emote', c: [{ t: 'text', v: 'lächelt' }] },
      { t: 'text', v: ' du' },
    ]);
    expect(html('*winkt*')).toBe('<p class="my-1 whitespace-pre-wrap break-words"><span><span class="emote">*winkt*</span></span></p>');
  });

  it('treats an unclosed * while streaming as an emote to the end', () => {
    expect(parseInline('Hi *walks over')).toEqual([
      { t: 'text', v: 'Hi ' },
      { t: 'emote', c: [{ t: 'text', v: 'walks over' }] },
    ]);
  });

  it('keeps **bold** inside an emote', () => {
    expect(parseInline('*grins **widely***')).toEqual([
      { t: 'emote', c: [{ t: 'text', v: 'grins ' }, { t: 'bold', c: [{ t: 'text', v: 'widely' }] }] },
    ]);
  });

  it('does not take snake_case for italics', () => {
    expect(parseInline('my_var_name')).toEqual([{ t: 'text', v: 'my_var_name' }]);
    expect(parseInline('so _very_ nice')[1]).toEqual({ t: 'italic', c: [{ t: 'text', v: 'very' }] });
    expect(parseInline('window.__xss = a._b')).toEqual([{ t: 'text', v: 'window.__xss = a._b' }]);
    expect(parseInline('x.__a=1 y.__a=2')).toEqual([{ t: 'text', v: 'x.__a=1 y.__a=2' }]);
  });
});

describe('sanitizing', () => {
  const payloads = [
    '<script>alert(1)</script>',
    '<img src=x onerror=alert(1)>',
    '<svg onload=alert(1)>',
    '<a href="javascript:alert(1)">x</a>',
    '"><iframe src=javascript:alert(1)>',
    '<style>body{display:none}</style>',
  ];
  for (const p of payloads) {
    it(`renders ${p} as text`, () => {
      const out = html(`before ${p} after`);
      expect(out).not.toMatch(/<(script|img|svg|iframe|style)\b/i);
      expect(out).not.toMatch(/<a\b/i);
      expect(out).toContain('&lt;');
    });
  }

  it('links only http(s) URLs', () => {
    expect(html('[x](javascript:alert(1))')).not.toContain('href');
    expect(html('[x](data:text/html;base64,PHNjcmlwdD4=)')).not.toContain('href');
    const ok = html('[Hamburg](https://de.wikipedia.org/wiki/Hamburg)');
    expect(ok).toContain('href="https://de.wikipedia.org/wiki/Hamburg"');
    expect(ok).toContain('rel="noopener noreferrer nofollow"');
  });

  it('escapes HTML inside code spans and blocks', () => {
    expect(html('`<b>x</b>`')).toContain('&lt;b&gt;x&lt;/b&gt;');
    expect(html('```html\n<script>x()</script>\n```')).toContain('&lt;script&gt;');
  });
});

describe('blocks', () => {
  it('splits paragraphs and keeps line breaks', () => {
    const out = html('one\ntwo\n\nthree');
    expect(out.match(/<p /g)?.length).toBe(2);
    expect(out).toContain('<br/>');
  });
});

describe('search highlighting', () => {
  const marked = (text: string, query: string) =>
    renderToStaticMarkup(<Markdown text={text} highlight={searchWords(query)} />);

  it('marks whole words, case and accents folded as the search folds them', () => {
    const out = marked('Wir fahren nach Köln, *lächelt* Köln!', 'koln');
    expect(out.match(/<mark[^>]*>Köln<\/mark>/g)).toHaveLength(2);
    expect(out).toContain('<span class="emote">*lächelt*</span>');
    // Not a part of a longer word, and no literal brackets as the old snippets had.
    expect(marked('Kölner Dom', 'koln')).not.toContain('<mark');
    expect(out).not.toContain('[');
  });

  it('renders the message as markdown, markup from the text staying text', () => {
    const out = marked('**Bello** <img src=x onerror=alert(1)> bellt', 'bello bellt');
    expect(out).toContain('<strong><mark');
    expect(out).toContain('&lt;img');
    expect(out.match(/<mark/g)).toHaveLength(2);
  });
});

describe('speech in quotes', () => {
  const speech = (open: string, close: string, v: string) => ({ t: 'speech', open, close, c: [{ t: 'text', v }] });

  it('colours "straight" quotes apart from the narration around them', () => {
    expect(parseInline('She says "Hallo!" and smiles')).toEqual([
      { t: 'text', v: 'She says ' },
      speech('"', '"', 'Hallo!'),
      { t: 'text', v: ' and smiles' },
    ]);
    expect(html('"Hi," she said, "how are you?"')).toBe(
      '<p class="my-1 whitespace-pre-wrap break-words"><span><span class="speech">&quot;Hi,&quot;</span> she said, ' +
        '<span class="speech">&quot;how are you?&quot;</span></span></p>',
    );
  });

  it('colours curly, German and French quotes', () => {
    expect(parseInline('“Hello,” he said.')[0]).toEqual(speech('“', '”', 'Hello,'));
    expect(parseInline('Er sagt: „Guten Morgen!“ und geht.')).toEqual([
      { t: 'text', v: 'Er sagt: ' },
      speech('„', '“', 'Guten Morgen!'),
      { t: 'text', v: ' und geht.' },
    ]);
    expect(parseInline('«Bonjour» et »Hallo«')).toEqual([
      speech('«', '»', 'Bonjour'),
      { t: 'text', v: ' et ' },
      speech('»', '«', 'Hallo'),
    ]);
  });

  it('colours quotes inside emotes, and emotes inside quotes', () => {
    expect(parseInline('*flüstert "komm her" leise*')).toEqual([
      { t: 'emote', c: [{ t: 'text', v: 'flüstert ' }, speech('"', '"', 'komm her'), { t: 'text', v: ' leise' }] },
    ]);
    expect(html('*winkt „Hallo!“*')).toContain('<span class="emote">*winkt <span class="speech">„Hallo!“</span>*</span>');
    expect(parseInline('"Na *zwinkert* gut"')).toEqual([
      {
        t: 'speech', open: '"', close: '"',
        c: [{ t: 'text', v: 'Na ' }, { t: 'emote', c: [{ t: 'text', v: 'zwinkert' }] }, { t: 'text', v: ' gut' }],
      },
    ]);
  });

  it('leaves an unclosed quote plain, so it never colours the rest of the message', () => {
    expect(parseInline('He said "wait and then left. *sighs*')).toEqual([
      { t: 'text', v: 'He said "wait and then left. ' },
      { t: 'emote', c: [{ t: 'text', v: 'sighs' }] },
    ]);
    expect(parseInline('„Ich komme gleich, sagte sie')).toEqual([{ t: 'text', v: '„Ich komme gleich, sagte sie' }]);
    // A quote does not run across lines or paragraphs.
    expect(html('"Erste Zeile\nzweite" Zeile')).not.toContain('speech');
    // Inches and a lone mark are not speech.
    expect(parseInline('a 5" screen and a 7" one')).toEqual([{ t: 'text', v: 'a 5" screen and a 7" one' }]);
    expect(parseInline('say " hi " there')).toEqual([{ t: 'text', v: 'say " hi " there' }]);
  });

  it('leaves quotes in code spans and code blocks alone', () => {
    expect(parseInline('run `echo "hi"` now')).toEqual([
      { t: 'text', v: 'run ' },
      { t: 'code', v: 'echo "hi"' },
      { t: 'text', v: ' now' },
    ]);
    expect(html('```\nprint("hi")\n```')).not.toContain('speech');
    // A code span inside speech stays code, its quote marks included.
    expect(parseInline('"try `a"b` now"')).toEqual([
      { t: 'speech', open: '"', close: '"', c: [{ t: 'text', v: 'try ' }, { t: 'code', v: 'a"b' }, { t: 'text', v: ' now' }] },
    ]);
  });

  it('stays fast on a long text full of unclosed quotes', () => {
    for (const mark of ['"', '„', '«']) {
      const text = `${mark}a `.repeat(30000);
      const t0 = performance.now();
      expect(parseInline(text)).toEqual([{ t: 'text', v: text }]);
      expect(performance.now() - t0).toBeLessThan(1000);
    }
  });

  it('keeps quoted markup inert', () => {
    const out = html('"<img src=x onerror=alert(1)>" and „<script>alert(1)</script>“');
    expect(out).not.toMatch(/<(script|img)\b/i);
    expect(out.match(/class="speech"/g)).toHaveLength(2);
    expect(out).toContain('&lt;img');
  });

  it('marks search words inside speech', () => {
    const out = renderToStaticMarkup(<Markdown text={'Sie sagt "Köln ist schön"'} highlight={searchWords('koln')} />);
    expect(out).toMatch(/<span class="speech">&quot;<mark[^>]*>Köln<\/mark> ist schön&quot;<\/span>/);
  });
});
