// MemoryPanel: what the character remembers of this chat — the summary (edit, restore a version),
// facts (add, pin, delete) — and a search through the whole chat, whose results open the message
// in its chat.
import { useCallback, useEffect, useState } from 'react';
import { api, type Memory, type Message } from '../api/client';
import { formatDate, useT } from '../i18n';
import { errorText } from '../lib/errors';
import { Drawer } from './Drawer';
import { Field, inputClass } from './Field';
import { Markdown, searchWords } from '../lib/markdown';

interface Props {
  chatId: string;
  onClose: () => void;
  // Shows a message in its chat (the result of a search), closing this drawer.
  onJump?: (messageId: string) => void;
  // A message's text as the chat shows it ({{user}} and {{char}} filled in).
  textOf?: (m: Message) => string;
  nameOf?: (m: Message) => string;
}

export function MemoryPanel({ chatId, onClose, onJump, textOf, nameOf }: Props) {
  const t = useT();
  const [memory, setMemory] = useState<Memory | null>(null);
  const [summary, setSummary] = useState('');
  const [fact, setFact] = useState('');
  const [error, setError] = useState<Record<string, string>>({});
  const [query, setQuery] = useState('');
  const [results, setResults] = useState<{ message: Message; snippet: string }[] | null>(null);
  const [searched, setSearched] = useState<string[]>([]);

  const load = useCallback(async () => {
    const m = await api.memory(chatId);
    setMemory(m);
    setSummary(m.summary?.text ?? '');
  }, [chatId]);
  useEffect(() => {
    load();
  }, [load]);

  const guard = (field: string) => async (fn: () => Promise<unknown>) => {
    setError({});
    try {
      await fn();
      await load();
    } catch (e) {
      setError({ [field]: errorText(t, e) });
    }
  };

  if (!memory) return null;
  return (
    <Drawer title={t.memory} onClose={onClose} testId="memory-panel" closeTestId="close-memory">
          {memory.jobs.length > 0 && <p className="text-xs text-sky-300">{t.working}</p>}
          <section className="space-y-2">
            <Field label={t.summary} error={error.summary}>
              <textarea
                className={`${inputClass} min-h-28`}
                value={summary}
                placeholder={t.noSummary}
                onChange={(e) => setSummary(e.target.value)}
                data-testid="summary-text"
              />
            </Field>
            <div className="flex justify-end">
              <button
                className="rounded-lg bg-pink-700 text-white px-3 py-1.5 text-sm hover:bg-pink-800 disabled:opacity-40"
                disabled={!summary.trim() || summary === (memory.summary?.text ?? '')}
                onClick={() => guard('summary')(() => api.saveSummary(chatId, summary))}
                data-testid="save-summary"
              >
                {t.save}
              </button>
            </div>
            {memory.summaries_history.length > 1 && (
              <details className="text-sm">
                <summary className="cursor-pointer text-zinc-400">{t.versions}</summary>
                <ul className="mt-2 space-y-2">
                  {memory.summaries_history.slice(1).map((s) => (
                    <li key={s.version} className="rounded-lg bg-zinc-900 p-2">
                      <div className="mb-1 flex items-center text-xs text-zinc-500">
                        <span className="flex-1">
                          v{s.version} · {s.source} · {formatDate(t, s.created_at)}
                        </span>
                        <button className="rounded px-2 hover:bg-zinc-800" onClick={() => guard('summary')(() => api.rollbackSummary(chatId, s.version))}>
                          {t.restore}
                        </button>
                      </div>
                      <p className="whitespace-pre-wrap text-zinc-300">{s.text}</p>
                    </li>
                  ))}
                </ul>
              </details>
            )}
          </section>
          <section className="space-y-2">
            <h3 className="text-xs font-semibold uppercase tracking-wide text-zinc-500">{t.facts}</h3>
            {memory.facts.length === 0 && <p className="text-sm text-zinc-500">{t.noFacts}</p>}
            <ul className="space-y-1" data-testid="facts">
              {memory.facts.map((f) => (
                <li key={f.id} className="flex items-center gap-2 rounded-lg bg-zinc-900 px-3 py-2 text-sm" data-testid="fact">
                  <span className="flex-1">{f.text}</span>
                  {f.pinned && <span className="text-xs text-pink-300">{t.pinned}</span>}
                  <button className="rounded px-1.5 text-xs text-zinc-400 hover:bg-zinc-800" onClick={() => guard('facts')(() => api.updateFact(f.id, { pinned: !f.pinned }))}>
                    {f.pinned ? t.unpin : t.pin}
                  </button>
                  <button className="rounded px-1.5 text-zinc-500 hover:text-red-400" aria-label={t.delete} onClick={() => guard('facts')(() => api.deleteFact(f.id))}>
                    ✕
                  </button>
                </li>
              ))}
            </ul>
            <Field label="" error={error.text}>
              <form
                className="flex gap-2"
                onSubmit={(e) => {
                  e.preventDefault();
                  if (!fact.trim()) return;
                  guard('text')(async () => {
                    await api.addFact(chatId, fact, true);
                    setFact('');
                  });
                }}
              >
                <input
                  className={`${inputClass} flex-1`}
                  value={fact}
                  placeholder={t.addFact}
                  onChange={(e) => setFact(e.target.value)}
                  data-testid="fact-input"
                />
                <button className="rounded-lg bg-zinc-800 px-3 text-sm hover:bg-zinc-700" data-testid="add-fact">
                  +
                </button>
              </form>
            </Field>
          </section>
          <section className="space-y-2">
            <form
              onSubmit={async (e) => {
                e.preventDefault();
                if (!query.trim()) return;
                setResults(await api.search(chatId, query));
                setSearched(searchWords(query));
              }}
            >
              <input className={`${inputClass} w-full`} value={query} placeholder={t.searchChat} onChange={(e) => setQuery(e.target.value)} data-testid="chat-search" />
            </form>
            {results && results.length === 0 && <p className="text-sm text-zinc-500">{t.noResults}</p>}
            <ul className="space-y-1 text-sm">
              {results?.map((r) => (
                <li key={r.message.id}>
                  <button
                    type="button"
                    className="block w-full rounded-lg bg-zinc-900 px-3 py-2 text-left hover:bg-zinc-800 focus:outline-none focus:ring-1 focus:ring-pink-500"
                    onClick={() => onJump?.(r.message.id)}
                    title={t.showInChat}
                    data-testid="search-result"
                  >
                    <span className="text-xs text-zinc-500">
                      {nameOf ? `${nameOf(r.message)} · ` : ''}
                      {formatDate(t, r.message.created_at)}
                    </span>
                    <div className="line-clamp-6 text-zinc-200">
                      <Markdown text={textOf ? textOf(r.message) : r.message.content} highlight={searched} />
                    </div>
                  </button>
                </li>
              ))}
            </ul>
          </section>
    </Drawer>
  );
}