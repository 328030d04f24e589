// LorebookEditor: the lorebooks (world info) attached to a character — create, import (SillyTavern
// world info, a V2 character_book or a V3 lorebook), delete, and edit the book's options and its
// entries (keys, secondary keys and their logic, content, enabled, always on, case, whole words,
// position and depth, order). Fields it does not show are kept as they are.
import { useCallback, useEffect, useState } from 'react';
import { api, type Character, type LoreEntry, type Lorebook } from '../api/client';
import { format, useT } from '../i18n';
import { errorText } from '../lib/errors';
import { Drawer } from './Drawer';
import { Field, inputClass } from './Field';

const splitKeys = (s: string) =>
  s
    .split(',')
    .map((k) => k.trim())
    .filter(Boolean);

function ext(e: LoreEntry): Record<string, unknown> {
  return (e.extensions ?? {}) as Record<string, unknown>;
}

export function LorebookEditor({ character, onClose }: { character: Character; onClose: () => void }) {
  const t = useT();
  const [books, setBooks] = useState<Lorebook[]>([]);
  const [others, setOthers] = useState<Lorebook[]>([]);
  const [book, setBook] = useState<Lorebook | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState(false);

  const load = useCallback(
    async (select?: string) => {
      const everything = await api.lorebooks();
      const all = everything.filter((b) => b.character_ids.includes(character.id));
      setBooks(all);
      setOthers(everything.filter((b) => !b.character_ids.includes(character.id)));
      const id = select ?? all[0]?.id;
      setBook(id ? await api.lorebook(id) : null);
    },
    [character.id],
  );
  useEffect(() => {
    load().catch((e) => setError(String(e)));
  }, [load]);

  const fail = (e: unknown) => setError(errorText(t, e));
  const entries = book?.entries ?? [];
  const setEntry = (i: number, patch: Partial<LoreEntry>) => {
    if (!book) return;
    const next = [...entries];
    next[i] = { ...next[i], ...patch };
    setBook({ ...book, entries: next });
    setSaved(false);
  };
  const setExt = (i: number, patch: Record<string, unknown>) => setEntry(i, { extensions: { ...ext(entries[i]), ...patch } });

  const save = async () => {
    if (!book) return;
    setError(null);
    try {
      const b = await api.updateLorebook(book.id, {
        name: book.name,
        scan_depth: book.scan_depth,
        token_budget: book.token_budget,
        recursive_scanning: book.recursive_scanning,
        entries,
      });
      setBook(b);
      setSaved(true);
      await load(b.id);
    } catch (e) {
      fail(e);
    }
  };

  const numberOr = (v: string) => (v.trim() === '' ? undefined : Number(v));

  return (
    <Drawer
      title={`${t.lorebooks} · ${character.name}`}
      onClose={onClose}
      testId="lorebook-editor"
      wide
      footer={
        book && (
          <>
            {saved && <span className="text-sm text-emerald-400">{t.saved}</span>}
            <button className="rounded-lg bg-pink-700 text-white px-4 py-2 text-sm font-medium hover:bg-pink-800" onClick={save} data-testid="save-lorebook">
              {t.save}
            </button>
          </>
        )
      }
    >
      <div className="flex flex-wrap items-center gap-2">
        {books.map((b) => (
          <button
            key={b.id}
            className={`min-h-10 rounded-lg px-3 text-sm ${book?.id === b.id ? 'bg-pink-700 text-white' : 'bg-zinc-800 hover:bg-zinc-700'}`}
            onClick={() => load(b.id).catch(fail)}
          >
            {b.name}
          </button>
        ))}
        <button
          className="min-h-10 rounded-lg bg-zinc-800 px-3 text-sm hover:bg-zinc-700"
          data-testid="new-lorebook"
          onClick={async () => {
            try {
              const b = await api.createLorebook({ name: character.name, character_ids: [character.id], entries: [] });
              await load(b.id);
            } catch (e) {
              fail(e);
            }
          }}
        >
          + {t.lorebookNew}
        </button>
        <label className="flex min-h-10 cursor-pointer items-center rounded-lg bg-zinc-800 px-3 text-sm hover:bg-zinc-700">
          {t.lorebookImport}
          <input
            type="file"
            accept=".json,application/json"
            className="sr-only"
            data-testid="import-lorebook"
            onChange={async (e) => {
              const f = e.target.files?.[0];
              e.target.value = '';
              if (!f) return;
              try {
                const b = await api.importLorebook(f, character.id);
                await load(b.id);
              } catch (err) {
                fail(err);
              }
            }}
          />
        </label>
      </div>
      {others.length > 0 && (
        <div className="flex flex-wrap items-center gap-2 text-sm" data-testid="other-lorebooks">
          <span className="text-zinc-400">{t.lorebookOthers}</span>
          {others.map((b) => (
            <button
              key={b.id}
              className="min-h-10 rounded-lg border border-zinc-700 px-3 hover:bg-zinc-800"
              title={format(t.lorebookAttach, { name: character.name })}
              onClick={async () => {
                try {
                  await api.updateLorebook(b.id, { character_ids: [...b.character_ids, character.id] });
                  await load(b.id);
                } catch (e) {
                  fail(e);
                }
              }}
            >
              + {b.name}
            </button>
          ))}
        </div>
      )}
      {error && (
        <p className="break-words text-sm text-red-400" role="alert" data-testid="lorebook-error">
          {error}
        </p>
      )}
      {!book && <p className="text-sm text-zinc-500">{format(t.lorebookNone, { name: character.name })}</p>}
      {book && (
        <>
          <div className="grid grid-cols-1 gap-3 sm:grid-cols-2">
            <Field label={t.lorebookName}>
              <input className={inputClass} value={book.name} onChange={(e) => setBook({ ...book, name: e.target.value })} />
            </Field>
            <Field label={t.lorebookScanDepth}>
              <input
                className={inputClass}
                type="number"
                min={0}
                value={book.scan_depth ?? ''}
                onChange={(e) => setBook({ ...book, scan_depth: numberOr(e.target.value) })}
              />
            </Field>
            <Field label={t.lorebookTokenBudget}>
              <input
                className={inputClass}
                type="number"
                min={0}
                value={book.token_budget ?? ''}
                onChange={(e) => setBook({ ...book, token_budget: numberOr(e.target.value) })}
              />
            </Field>
            <label className="flex items-center gap-2 text-sm">
              <input
                type="checkbox"
                checked={!!book.recursive_scanning}
                onChange={(e) => setBook({ ...book, recursive_scanning: e.target.checked })}
              />
              {t.lorebookRecursive}
            </label>
          </div>
          <h3 className="font-medium">
            {t.loreEntries} ({entries.length})
          </h3>
          <ul className="space-y-3">
            {entries.map((e, i) => {
              const atDepth = ext(e).position === 4;
              const position = atDepth ? 'depth' : e.position === 'after_char' ? 'after' : 'before';
              return (
                <li key={`${book.id}-${i}-${entries.length}`} className="space-y-2 rounded-xl border border-zinc-800 p-3" data-testid="lore-entry">
                  <div className="flex gap-2">
                    <input
                      className={`${inputClass} min-w-0 flex-1`}
                      placeholder={t.loreEntryName}
                      value={e.name ?? e.comment ?? ''}
                      onChange={(ev) => setEntry(i, { name: ev.target.value })}
                    />
                    <button
                      className="min-h-10 min-w-10 rounded-lg text-zinc-500 hover:bg-zinc-800 hover:text-red-400"
                      title={t.loreDeleteEntry}
                      aria-label={t.loreDeleteEntry}
                      onClick={() => {
                        setBook({ ...book, entries: entries.filter((_, k) => k !== i) });
                        setSaved(false);
                      }}
                    >
                      ✕
                    </button>
                  </div>
                  <Field label={t.loreKeys}>
                    <input
                      className={inputClass}
                      defaultValue={e.keys.join(', ')}
                      data-testid="lore-keys"
                      onBlur={(ev) => setEntry(i, { keys: splitKeys(ev.target.value) })}
                    />
                  </Field>
                  <div className="grid grid-cols-1 gap-2 sm:grid-cols-[1fr_auto]">
                    <Field label={t.loreSecondaryKeys}>
                      <input
                        className={inputClass}
                        defaultValue={(e.secondary_keys ?? []).join(', ')}
                        onBlur={(ev) => {
                          const keys = splitKeys(ev.target.value);
                          setEntry(i, { secondary_keys: keys, selective: keys.length > 0 });
                        }}
                      />
                    </Field>
                    <Field label={t.loreLogic}>
                      <select
                        className={inputClass}
                        value={Number(ext(e).selectiveLogic ?? 0)}
                        onChange={(ev) => setExt(i, { selectiveLogic: Number(ev.target.value) })}
                      >
                        <option value={0}>{t.loreLogicAndAny}</option>
                        <option value={3}>{t.loreLogicAndAll}</option>
                        <option value={2}>{t.loreLogicNotAny}</option>
                        <option value={1}>{t.loreLogicNotAll}</option>
                      </select>
                    </Field>
                  </div>
                  <Field label={t.loreContent}>
                    <textarea
                      className={inputClass}
                      rows={3}
                      value={e.content}
                      data-testid="lore-content"
                      onChange={(ev) => setEntry(i, { content: ev.target.value })}
                    />
                  </Field>
                  <div className="flex flex-wrap gap-x-4 gap-y-2 text-sm">
                    <label className="flex items-center gap-2">
                      <input type="checkbox" checked={e.enabled !== false} onChange={(ev) => setEntry(i, { enabled: ev.target.checked })} />
                      {t.loreEnabled}
                    </label>
                    <label className="flex items-center gap-2">
                      <input type="checkbox" checked={!!e.constant} onChange={(ev) => setEntry(i, { constant: ev.target.checked })} />
                      {t.loreConstant}
                    </label>
                    <label className="flex items-center gap-2">
                      <input
                        type="checkbox"
                        checked={!!e.case_sensitive}
                        onChange={(ev) => setEntry(i, { case_sensitive: ev.target.checked })}
                      />
                      {t.loreCaseSensitive}
                    </label>
                    <label className="flex items-center gap-2">
                      <input
                        type="checkbox"
                        checked={ext(e).match_whole_words === true}
                        onChange={(ev) => setExt(i, { match_whole_words: ev.target.checked })}
                      />
                      {t.loreWholeWords}
                    </label>
                  </div>
                  <div className="grid grid-cols-2 gap-2 sm:grid-cols-3">
                    <Field label={t.lorePosition}>
                      <select
                        className={inputClass}
                        value={position}
                        onChange={(ev) => {
                          const v = ev.target.value;
                          if (v === 'depth') setEntry(i, { extensions: { ...ext(e), position: 4, depth: ext(e).depth ?? 4 } });
                          else
                            setEntry(i, {
                              position: v === 'after' ? 'after_char' : 'before_char',
                              extensions: { ...ext(e), position: v === 'after' ? 1 : 0 },
                            });
                        }}
                      >
                        <option value="before">{t.lorePosBefore}</option>
                        <option value="after">{t.lorePosAfter}</option>
                        <option value="depth">{t.lorePosDepth}</option>
                      </select>
                    </Field>
                    {atDepth && (
                      <Field label={t.loreDepth}>
                        <input
                          className={inputClass}
                          type="number"
                          min={0}
                          value={Number(ext(e).depth ?? 4)}
                          onChange={(ev) => setExt(i, { depth: Number(ev.target.value) })}
                        />
                      </Field>
                    )}
                    <Field label={t.loreOrder}>
                      <input
                        className={inputClass}
                        type="number"
                        value={e.insertion_order}
                        onChange={(ev) => setEntry(i, { insertion_order: Number(ev.target.value) })}
                      />
                    </Field>
                  </div>
                </li>
              );
            })}
          </ul>
          <div className="flex flex-wrap gap-2">
            <button
              className="min-h-10 rounded-lg bg-zinc-800 px-3 text-sm hover:bg-zinc-700"
              data-testid="add-lore-entry"
              onClick={() => {
                const next: LoreEntry = { keys: [], content: '', enabled: true, insertion_order: 100, extensions: {}, use_regex: false };
                setBook({ ...book, entries: [...entries, next] });
                setSaved(false);
              }}
            >
              + {t.loreAddEntry}
            </button>
            <button
              className="min-h-10 rounded-lg px-3 text-sm hover:bg-zinc-800"
              data-testid="detach-lorebook"
              onClick={async () => {
                try {
                  await api.updateLorebook(book.id, { character_ids: book.character_ids.filter((id) => id !== character.id) });
                  await load();
                } catch (e) {
                  fail(e);
                }
              }}
            >
              {format(t.lorebookDetach, { name: character.name })}
            </button>
            <button
              className="min-h-10 rounded-lg px-3 text-sm text-red-400 hover:bg-zinc-800"
              onClick={async () => {
                try {
                  await api.deleteLorebook(book.id);
                  await load();
                } catch (e) {
                  fail(e);
                }
              }}
            >
              {t.lorebookDelete}
            </button>
          </div>
        </>
      )}
    </Drawer>
  );
}
