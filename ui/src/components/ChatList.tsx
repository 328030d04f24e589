// Every chat with a character: its name, how many messages, when, and the newest message; open,
// rename (inline: Enter saves, Esc cancels) and delete (our confirmation dialog). The chat shown
// is marked.
import { useEffect, useState } from 'react';
import { api, type Chat } from '../api/client';
import { format, formatDate, useT } from '../i18n';
import { errorText } from '../lib/errors';
import { fillMacros } from '../lib/macros';
import { useConfirm } from './ConfirmDialog';
import { Drawer } from './Drawer';
import { inputClass } from './Field';

interface Props {
  characterId: string;
  characterName: string;
  userName: string;
  currentId: string | null;
  onOpen: (id: string) => void;
  onChanged: (deletedId?: string) => void;  // A rename or a delete: the header's list is stale.
  onClose: () => void;
}

export const chatName = (t: ReturnType<typeof useT>, c: Chat) => c.title || format(t.chatTitle, { date: formatDate(t, c.created_at) });

export function ChatList({ characterId, characterName, userName, currentId, onOpen, onChanged, onClose }: Props) {
  const t = useT();
  const [chats, setChats] = useState<Chat[] | null>(null);
  const [renaming, setRenaming] = useState<{ id: string; title: string } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [confirmDialog, confirm] = useConfirm();

  const load = async () => setChats(await api.chats(characterId));
  useEffect(() => {
    load().catch((e) => setError(errorText(t, e)));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [characterId]);

  const rename = async () => {
    if (!renaming) return;
    setError(null);
    try {
      await api.renameChat(renaming.id, renaming.title.trim());
      setRenaming(null);
      await load();
      onChanged();
    } catch (e) {
      setError(errorText(t, e));
    }
  };

  const remove = async (c: Chat) => {
    if (!(await confirm(format(t.confirmDeleteChat, { name: chatName(t, c) })))) return;
    setError(null);
    try {
      await api.deleteChat(c.id);
      await load();
      onChanged(c.id);
    } catch (e) {
      setError(errorText(t, e));
    }
  };

  const button = 'flex min-h-10 min-w-10 items-center justify-center rounded-lg text-sm text-zinc-400 hover:bg-zinc-800 hover:text-zinc-100';
  return (
    <Drawer title={t.allChats} onClose={onClose} testId="chat-list" closeTestId="close-chat-list">
      {confirmDialog}
      {error && <p className="text-sm text-red-400" role="alert" data-testid="chat-list-error">{error}</p>}
      {chats && chats.length === 0 && <p className="text-sm text-zinc-500">{t.noChats}</p>}
      <ul className="space-y-2">
        {chats?.map((c) => (
          <li
            key={c.id}
            className={`rounded-xl border px-3 py-2 ${c.id === currentId ? 'border-pink-700 bg-zinc-900' : 'border-zinc-800'}`}
            data-testid="chat-list-item"
            data-chat-id={c.id}
          >
            {renaming?.id === c.id ? (
              <form
                className="flex gap-2"
                onSubmit={(e) => {
                  e.preventDefault();
                  rename();
                }}
              >
                <input
                  autoFocus
                  className={`${inputClass} min-w-0 flex-1`}
                  value={renaming.title}
                  maxLength={200}
                  aria-label={t.chatName}
                  placeholder={format(t.chatTitle, { date: formatDate(t, c.created_at) })}
                  onChange={(e) => setRenaming({ id: c.id, title: e.target.value })}
                  onKeyDown={(e) => {
                    if (e.key === 'Escape') {
                      e.stopPropagation();  // Closes the rename, not the drawer.
                      e.nativeEvent.stopImmediatePropagation();
                      setRenaming(null);
                    }
                  }}
                  data-testid="chat-rename-input"
                />
                <button type="submit" className="min-h-10 rounded-lg bg-pink-700 px-3 text-sm text-white hover:bg-pink-800" data-testid="chat-rename-save">
                  {t.save}
                </button>
              </form>
            ) : (
              <div className="flex items-start gap-1">
                <button
                  className="min-w-0 flex-1 rounded-lg py-1 text-left"
                  onClick={() => {
                    onOpen(c.id);
                    onClose();
                  }}
                  aria-current={c.id === currentId ? 'true' : undefined}
                  data-testid="chat-list-open"
                >
                  <span className="block truncate font-medium" data-testid="chat-list-name">{chatName(t, c)}</span>
                  <span className="block text-xs text-zinc-500">
                    {format(c.message_count === 1 ? t.oneMessage : t.nMessages, { n: String(c.message_count ?? 0) })} · {formatDate(t, c.last_message?.created_at ?? c.updated_at)}
                  </span>
                  {c.last_message && (
                    <span className="mt-0.5 line-clamp-2 text-sm text-zinc-400" data-testid="chat-list-excerpt">
                      {c.last_message.role === 'user' ? `${userName}: ` : c.last_message.role === 'assistant' ? `${characterName}: ` : ''}
                      {fillMacros(c.last_message.excerpt, characterName, userName)}
                      {c.last_message.truncated ? '…' : ''}
                    </span>
                  )}
                </button>
                <button className={button} onClick={() => setRenaming({ id: c.id, title: c.title })} aria-label={t.renameChat} title={t.renameChat} data-testid="chat-rename">
                  ✎
                </button>
                <button className={`${button} hover:text-red-300`} onClick={() => remove(c)} aria-label={t.deleteChat} title={t.deleteChat} data-testid="chat-delete">
                  ✕
                </button>
              </div>
            )}
          </li>
        ))}
      </ul>
    </Drawer>
  );
}
