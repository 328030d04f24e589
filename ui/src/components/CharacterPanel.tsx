// CharacterPanel: the characters with avatars and their last message, search, create, delete.
import { useEffect, useState } from 'react';
import { api, type Character } from '../api/client';
import { format, useT } from '../i18n';
import { Avatar } from './Avatar';

interface Props {
  characters: Character[];
  selectedId: string | null;
  onSelect: (id: string) => void;
  onCreate: () => void;
  onDeleted: (id: string) => void;
}

export function CharacterPanel({ characters, selectedId, onSelect, onCreate, onDeleted }: Props) {
  const t = useT();
  const [query, setQuery] = useState('');
  const [confirm, setConfirm] = useState<Character | null>(null);
  const [lastMessages, setLastMessages] = useState<Record<string, string>>({});

  // The last message of each character's most recent chat, for the list.
  useEffect(() => {
    let cancelled = false;
    (async () => {
      const out: Record<string, string> = {};
      for (const c of characters) {
        try {
          const chats = await api.chats(c.id);
          if (chats.length) {
            const msgs = await api.messages(chats[0].id);
            out[c.id] = msgs.length ? msgs[msgs.length - 1].content : '';
          }
        } catch {
          // A character deleted meanwhile.
        }
      }
      if (!cancelled) setLastMessages(out);
    })();
    return () => {
      cancelled = true;
    };
  }, [characters]);

  const q = query.trim().toLowerCase();
  const shown = characters.filter(
    (c) => !q || c.name.toLowerCase().includes(q) || c.tags.some((tag) => tag.toLowerCase().includes(q)),
  );

  return (
    <div className="flex min-h-0 flex-1 flex-col">
      <div className="flex gap-2 p-3">
        <input
          className="min-w-0 flex-1 rounded-lg bg-zinc-900 px-3 py-2 text-sm outline-none ring-pink-500 focus:ring-1"
          placeholder={t.search}
          value={query}
          onChange={(e) => setQuery(e.target.value)}
          data-testid="character-search"
        />
        <button
          className="rounded-lg bg-pink-600 px-3 py-2 text-sm font-medium hover:bg-pink-500"
          onClick={onCreate}
          title={t.newCharacter}
          data-testid="new-character"
        >
          +
        </button>
      </div>
      <ul className="scroll-thin min-h-0 flex-1 overflow-y-auto px-2 pb-2">
        {shown.length === 0 && <li className="px-3 py-6 text-center text-sm text-zinc-500">{t.noCharacters}</li>}
        {shown.map((c) => (
          <li key={c.id}>
            <div
              role="button"
              tabIndex={0}
              className={`group flex w-full cursor-pointer items-center gap-3 rounded-xl px-3 py-2 text-left ${
                c.id === selectedId ? 'bg-zinc-800' : 'hover:bg-zinc-900'
              }`}
              onClick={() => onSelect(c.id)}
              onKeyDown={(e) => e.key === 'Enter' && onSelect(c.id)}
              data-testid="character-item"
            >
              <Avatar character={c} size={44} />
              <div className="min-w-0 flex-1">
                <div className="truncate font-medium">{c.name}</div>
                <div className="truncate text-xs text-zinc-500">{lastMessages[c.id] ?? t.noMessagesYet}</div>
              </div>
              <button
                className="flex min-h-11 min-w-11 shrink-0 items-center justify-center rounded-lg text-zinc-500 hover:bg-zinc-800 hover:text-red-400 focus:opacity-100 md:min-h-8 md:min-w-8 md:opacity-0 md:group-hover:opacity-100"
                data-testid="delete-character"
                onClick={(e) => {
                  e.stopPropagation();
                  setConfirm(c);
                }}
                title={t.deleteCharacter}
                aria-label={t.deleteCharacter}
              >
                ✕
              </button>
            </div>
          </li>
        ))}
      </ul>
      {confirm && (
        <div className="fixed inset-0 z-50 flex items-center justify-center bg-black/60 p-4" role="dialog">
          <div className="w-full max-w-sm rounded-2xl bg-zinc-900 p-5">
            <p className="mb-4 text-sm">{format(t.confirmDeleteCharacter, { name: confirm.name })}</p>
            <div className="flex justify-end gap-2">
              <button className="rounded-lg px-3 py-2 text-sm hover:bg-zinc-800" onClick={() => setConfirm(null)}>
                {t.cancel}
              </button>
              <button
                className="rounded-lg bg-red-600 px-3 py-2 text-sm hover:bg-red-500"
                data-testid="confirm-delete"
                onClick={async () => {
                  const id = confirm.id;
                  setConfirm(null);
                  await api.deleteCharacter(id);
                  onDeleted(id);
                }}
              >
                {t.delete}
              </button>
            </div>
          </div>
        </div>
      )}
    </div>
  );
}
