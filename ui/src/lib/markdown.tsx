// Safe markdown for chat messages: the text becomes React elements, never HTML, so nothing from a
// model or a character card can execute. *emotes* are styled apart; **bold**, _italic_, `code`,
// ``` blocks and http(s) links are supported; an unclosed * while streaming is an emote to the end.
// Speech in quotes ("…", “…”, „…“, «…», »…«) is coloured apart from narration; a quote without its
// closing mark on the same line stays plain text, so it never colours the rest of a message.
import { Fragment, type ReactNode } from 'react';

export type Inline =
  | { t: 'text'; v: string }
  | { t: 'code'; v: string }
  | { t: 'bold'; c: Inline[] }
  | { t: 'italic'; c: Inline[] }
  | { t: 'emote'; c: Inline[] }
  | { t: 'speech'; open: string; close: string; c: Inline[] }
  | { t: 'link'; href: string; c: Inline[] };

export type Block = { t: 'code'; v: string } | { t: 'p'; lines: Inline[][] };

const SAFE_URL = /^https?:\/\/[^\s<>"']+$/i;

function isWord(ch: string | undefined): boolean {
  return ch !== undefined && /[\p{L}\p{N}]/u.test(ch);
}

// The closing marks each opening quote mark accepts.
const QUOTES: Record<string, string> = { '"': '"', '“': '”', '„': '“”', '«': '»', '»': '«' };

function isSpace(ch: string | undefined): boolean {
  return ch === undefined || /\s/u.test(ch);
}

// Where the quote opened at s[i] closes; -1 when nothing closes it, -2 when s[i] opens nothing.
// Code spans inside are skipped (a mark in them is code). A straight " is both marks: it opens only before a non-space and not after a letter or
// digit (5" is inches), and closes only after a non-space and not before a letter or digit.
function quoteEnd(s: string, i: number): number {
  const ch = s[i];
  const closers = QUOTES[ch];
  const straight = ch === '"';
  if (straight && (isSpace(s[i + 1]) || isWord(s[i - 1]))) return -2;
  for (let j = i + 1; j < s.length; j++) {
    if (s[j] === '`') {
      const end = s.indexOf('`', j + 1);
      if (end > j) {
        j = end;
        continue;
      }
    }
    if (closers.includes(s[j]) && j > i + 1 && !(straight && (isSpace(s[j - 1]) || isWord(s[j + 1])))) return j;
  }
  return -1;
}

export function parseInline(s: string): Inline[] {
  const out: Inline[] = [];
  let text = '';
  const flush = () => {
    if (text) out.push({ t: 'text', v: text });
    text = '';
  };
  // Per opening mark, the first position from which nothing closed it: no later one of the same
  // mark can close either, so a text full of unclosed quotes is not searched again and again.
  const unclosedFrom: Record<string, number> = {};
  let i = 0;
  while (i < s.length) {
    const ch = s[i];
    if (ch === '`') {
      const end = s.indexOf('`', i + 1);
      if (end > i) {
        flush();
        out.push({ t: 'code', v: s.slice(i + 1, end) });
        i = end + 1;
        continue;
      }
    } else if (s.startsWith('**', i)) {
      const end = s.indexOf('**', i + 2);
      if (end > i + 2) {
        flush();
        out.push({ t: 'bold', c: parseInline(s.slice(i + 2, end)) });
        i = end + 2;
        continue;
      }
    } else if (ch === '*') {
      // An emote runs to the next single '*' (or to the end while it is still being written).
      let end = i + 1;
      while (end < s.length) {
        if (s[end] === '*' && s[end + 1] === '*') end += 2;
        else if (s[end] === '*') break;
        else end++;
      }
      flush();
      out.push({ t: 'emote', c: parseInline(s.slice(i + 1, end)) });
      i = end + 1;
      continue;
    } else if (ch === '_' && s[i + 1] === '_') {
      // A run of underscores (__init__, ____) is text.
      while (s[i] === '_') text += s[i++];
      continue;
    } else if (ch === '_' && !isWord(s[i - 1]) && s[i + 1] !== ' ' && s[i + 1] !== undefined) {
      const end = s.indexOf('_', i + 1);
      if (end > i + 1 && !isWord(s[end + 1]) && s[end + 1] !== '_' && s[end - 1] !== ' ') {
        flush();
        out.push({ t: 'italic', c: parseInline(s.slice(i + 1, end)) });
        i = end + 1;
        continue;
      }
    } else if (ch in QUOTES && !(i >= unclosedFrom[ch])) {
      const end = quoteEnd(s, i);
      if (end === -1) unclosedFrom[ch] = i;
      if (end > i) {
        flush();
        out.push({ t: 'speech', open: ch, close: s[end], c: parseInline(s.slice(i + 1, end)) });
        i = end + 1;
        continue;
      }
    } else if (ch === '[') {
      const m = /^\[([^\]\n]+)\]\(([^)\s]+)\)/.exec(s.slice(i));
      if (m && SAFE_URL.test(m[2])) {
        flush();
        out.push({ t: 'link', href: m[2], c: parseInline(m[1]) });
        i += m[0].length;
        continue;
      }
    }
    text += ch;
    i++;
  }
  flush();
  return out;
}

export function parseBlocks(s: string): Block[] {
  const blocks: Block[] = [];
  const parts = s.split('```');
  parts.forEach((part, k) => {
    if (k % 2 === 1) {
      // Code block (the first line may name a language).
      const nl = part.indexOf('\n');
      blocks.push({ t: 'code', v: nl >= 0 && /^[\w+-]*$/.test(part.slice(0, nl)) ? part.slice(nl + 1) : part });
      return;
    }
    for (const para of part.split(/\n{2,}/)) {
      const trimmed = para.replace(/^\n+|\n+$/g, '');
      if (trimmed) blocks.push({ t: 'p', lines: trimmed.split('\n').map(parseInline) });
    }
  });
  return blocks;
}

// A word as the chat search compares it: lower case, accents removed (SQLite FTS5's unicode61
// tokenizer with remove_diacritics), so "koln" marks "Köln".
export function foldWord(w: string): string {
  return w.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();
}

// The words of a search query, folded (what the server's search matched).
export function searchWords(query: string): string[] {
  return (query.match(/[\p{L}\p{N}]+/gu) ?? []).map(foldWord);
}

// `text` with every whole word that is in `words` wrapped in <mark>.
function highlightText(text: string, words: string[] | undefined, key: string): ReactNode {
  if (!words?.length) return text;
  const out: ReactNode[] = [];
  let last = 0;
  for (const m of text.matchAll(/[\p{L}\p{N}]+/gu)) {
    if (!words.includes(foldWord(m[0]))) continue;
    const at = m.index ?? 0;
    if (at > last) out.push(text.slice(last, at));
    out.push(
      <mark key={`${key}m${at}`} className="rounded bg-amber-400/30 px-0.5 text-inherit" data-testid="search-mark">
        {m[0]}
      </mark>,
    );
    last = at + m[0].length;
  }
  if (!out.length) return text;
  if (last < text.length) out.push(text.slice(last));
  return out;
}

function renderInline(nodes: Inline[], key = '', words?: string[]): ReactNode[] {
  return nodes.map((n, i) => {
    const k = `${key}${i}`;
    switch (n.t) {
      case 'text':
        return <Fragment key={k}>{highlightText(n.v, words, k)}</Fragment>;
      case 'code':
        return (
          <code key={k} className="rounded bg-zinc-800 px-1 py-0.5 text-[0.9em]">
            {n.v}
          </code>
        );
      case 'bold':
        return <strong key={k}>{renderInline(n.c, k, words)}</strong>;
      case 'italic':
        return <em key={k}>{renderInline(n.c, k, words)}</em>;
      case 'emote':
        return (
          <span key={k} className="emote">
            *{renderInline(n.c, k, words)}*
          </span>
        );
      case 'speech':
        return (
          <span key={k} className="speech">
            {n.open}
            {renderInline(n.c, k, words)}
            {n.close}
          </span>
        );
      case 'link':
        return (
          <a key={k} href={n.href} target="_blank" rel="noopener noreferrer nofollow" className="text-pink-300 underline">
            {renderInline(n.c, k, words)}
          </a>
        );
    }
  });
}

export function Markdown({ text, highlight }: { text: string; highlight?: string[] }) {
  return (
    <>
      {parseBlocks(text).map((b, i) =>
        b.t === 'code' ? (
          <pre key={i} className="my-2 overflow-x-auto rounded-lg bg-zinc-900 p-3 text-sm">
            <code>{b.v}</code>
          </pre>
        ) : (
          <p key={i} className="my-1 whitespace-pre-wrap break-words">
            {b.lines.map((line, j) => (
              <span key={j}>
                {j > 0 && <br />}
                {renderInline(line, `${i}-${j}-`, highlight)}
              </span>
            ))}
          </p>
        ),
      )}
    </>
  );
}
