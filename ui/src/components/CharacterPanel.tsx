// CharacterPanel: the characters with avatars and their last message, search, create, delete, and
// import of character cards (file picker or drag and drop, several at once, with a summary).
import { useEffect, useRef, useState } from 'react';
import { api, type Character } from '../api/client';
import { format, useT } from '../i18n';
import { errorText } from '../lib/errors';
import { fillMacros } from '../lib/macros';
import { Avatar } from './Avatar';
import { useConfirm } from './ConfirmDialog';

interface Props {
  characters: Character[];
  selectedId: string | null;
  onSelect: (id: string) => void;
  onCreate: () => void;
  onDeleted: (id: string) => void;
  onImported: (ids: string[]) => void;
  userName?: string;
}

interface ImportSummary {
  total: number;
  imported: string[];
  failed: string[];
}

export function CharacterPanel({ characters, selectedId, onSelect, onCreate, onDeleted, onImported, userName = 'User' }: Props) {
  const t = useT();
  const [dragging, setDragging] = useState(false);
  const [importing, setImporting] = useState(false);
  const [summary, setSummary] = useState<ImportSummary | null>(null);
  const pickerRef = useRef<HTMLInputElement>(null);

  // Imports the files one after another (the server decides each file's kind by its content).
  const importFiles = async (files: File[]) => {
    if (!files.length) return;
    setImporting(true);
    const result: ImportSummary = { total: files.length, imported: [], failed: [] };
    const ids: string[] = [];
    for (const f of files) {
      try {
        const r = await api.importCard(f);
        ids.push(r.character.id);
        result.imported.push(
          r.lorebook
            ? format(t.importWithBook, { name: r.character.name, count: String(r.lorebook.entry_count) })
            : r.character.name,
        );
      } catch (e) {
        result.failed.push(format(t.importFailed, { file: f.name, error: errorText(t, e) }));
      }
    }
    setImporting(false);
    setSummary(result);
    onImported(ids);
  };
  const [query, setQuery] = useState('');
  // "/" anywhere but in a text field jumps to the search.
  const searchRef = useRef<HTMLInputElement>(null);
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const el = e.target as HTMLElement | null;
      const typing = el && (el.tagName === 'INPUT' || el.tagName === 'TEXTAREA' || el.tagName === 'SELECT' || el.isContentEditable);
      if (e.key !== '/' || typing || e.ctrlKey || e.metaKey || e.altKey) return;
      if (!searchRef.current || searchRef.current.offsetParent === null) return;  // Not shown (phone, chat tab).
      e.preventDefault();
      searchRef.current.focus();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);
  const [confirmDialog, ask] = useConfirm();
  const [lastMessages, setLastMessages] = useState<Record<string, string>>({});

  // The newest message of each character's most recent chat, for the list ({{user}} and {{char}}
  // filled in as the chat shows them).
  useEffect(() => {
    let cancelled = false;
    (async () => {
      const out: Record<string, string> = {};
      for (const c of characters) {
        try {
          const chats = await api.chats(c.id);
          if (chats.length) out[c.id] = fillMacros(chats[0].last_message?.excerpt ?? '', c.name, userName);
        } catch {
          // A character deleted meanwhile.
        }
      }
      if (!cancelled) setLastMessages(out);
    })();
    return () => {
      cancelled = true;
    };
  }, [characters, userName]);

  const q = query.trim().toLowerCase();
  const shown = characters.filter(
    (c) => !q || c.name.toLowerCase().includes(q) || c.tags.some((tag) => tag.toLowerCase().includes(q)),
  );

  return (
    <div
      className={`relative flex min-h-0 flex-1 flex-col ${dragging ? 'ring-2 ring-inset ring-pink-500' : ''}`}
      data-testid="character-panel"
      onDragOver={(e) => {
        if (!e.dataTransfer.types.includes('Files')) return;
        e.preventDefault();
        setDragging(true);
      }}
      onDragLeave={(e) => {
        if (!e.currentTarget.contains(e.relatedTarget as Node | null)) setDragging(false);
      }}
      onDrop={(e) => {
        e.preventDefault();
        setDragging(false);
        importFiles(Array.from(e.dataTransfer.files));
      }}
    >
      {dragging && (
        <div className="pointer-events-none absolute inset-0 z-10 flex items-center justify-center bg-zinc-950/80 p-6 text-center text-sm text-pink-300">
          {t.importDrop}
        </div>
      )}
      <div className="flex gap-2 p-3">
        <input
          className="min-w-0 flex-1 rounded-lg bg-zinc-900 px-3 py-2 text-sm outline-none ring-pink-500 focus:ring-1"
          placeholder={t.search}
          ref={searchRef}
          aria-keyshortcuts="/"
          value={query}
          onChange={(e) => setQuery(e.target.value)}
          data-testid="character-search"
        />
        <button
          className="rounded-lg bg-pink-700 text-white px-3 py-2 text-sm font-medium hover:bg-pink-800"
          onClick={onCreate}
          title={t.newCharacter}
          data-testid="new-character"
        >
          +
        </button>
        <button
          className="min-h-10 rounded-lg bg-zinc-800 px-3 py-2 text-sm hover:bg-zinc-700 disabled:opacity-50"
          onClick={() => pickerRef.current?.click()}
          disabled={importing}
          title={t.importCards}
          aria-label={t.importCards}
          data-testid="import-cards"
        >
          ⇪
        </button>
        <input
          ref={pickerRef}
          type="file"
          multiple
          accept=".png,.json,.charx,image/png,application/json"
          className="hidden"
          data-testid="import-cards-input"
          onChange={(e) => {
            const files = Array.from(e.target.files ?? []);
            e.target.value = '';
            importFiles(files);
          }}
        />
      </div>
      {summary && (
        <div className="mx-3 mb-2 rounded-lg bg-zinc-900 p-3 text-sm" role="status" data-testid="import-summary">
          <div className="flex items-start gap-2">
            <span className="flex-1 font-medium">
              {format(t.importSummary, { ok: String(summary.imported.length), total: String(summary.total) })}
            </span>
            <button className="px-1 text-zinc-500 hover:text-zinc-200" onClick={() => setSummary(null)} aria-label={t.close}>
              ✕
            </button>
          </div>
          <ul className="mt-1 space-y-0.5 text-xs">
            {summary.imported.map((n, i) => (
              <li key={`ok${i}`} className="break-words text-zinc-300">
                ✓ {n}
              </li>
            ))}
            {summary.failed.map((n, i) => (
              <li key={`no${i}`} className="break-words text-red-400" data-testid="import-failed">
                ✕ {n}
              </li>
            ))}
          </ul>
        </div>
      )}
      <ul className="scroll-thin min-h-0 flex-1 overflow-y-auto px-2 pb-2">
        {shown.length === 0 && <li className="px-3 py-6 text-center text-sm text-zinc-500">{t.noCharacters}</li>}
        {shown.map((c) => (
          <li key={c.id} className={`group flex items-center rounded-xl pr-3 ${c.id === selectedId ? 'bg-zinc-800' : 'hover:bg-zinc-900'}`}>
            {/* The row is a button to open the character; delete sits beside it (no button in a button). */}
            <button
              type="button"
              className="flex min-w-0 flex-1 cursor-pointer items-center gap-3 rounded-xl py-2 pl-3 pr-3 text-left"
              onClick={() => onSelect(c.id)}
              aria-current={c.id === selectedId ? 'true' : undefined}
              data-testid="character-item"
            >
              <Avatar character={c} size={44} />
              <div className="min-w-0 flex-1">
                <div className="truncate font-medium">{c.name}</div>
                <div className="truncate text-xs text-zinc-500">{lastMessages[c.id] ?? t.noMessagesYet}</div>
              </div>
            </button>
            <button
              className="flex min-h-11 min-w-11 shrink-0 items-center justify-center rounded-lg text-zinc-500 hover:bg-zinc-800 hover:text-red-400 focus:opacity-100 md:min-h-8 md:min-w-8 md:opacity-0 md:group-hover:opacity-100"
              data-testid="delete-character"
              onClick={async () => {
                if (!(await ask(format(t.confirmDeleteCharacter, { name: c.name })))) return;
                await api.deleteCharacter(c.id);
                onDeleted(c.id);
              }}
              title={t.deleteCharacter}
              aria-label={t.deleteCharacter}
            >
              ✕
            </button>
          </li>
        ))}
      </ul>
      {confirmDialog}
    </div>
  );
}
