// MediaPanel: the character's avatar, generated images and audio, with empty states that say what
// will appear there.
import { useEffect, useState } from 'react';
import type { Character } from '../api/client';
import { format, formatDate, useT } from '../i18n';
import { audioQueue } from '../lib/audioQueue';
import { Lightbox } from './MessageImage';

interface MediaItem {
  id: string;
  kind: 'image' | 'audio';
  url: string;
  prompt?: string;
  urls?: string[];   // Audio: the reply's sentences, in order.
  text?: string;     // Audio: the start of the reply.
  seconds?: number;
  created_at: number;
}

export function MediaPanel({ character, version }: { character: Character | null; version: number }) {
  const t = useT();
  const [items, setItems] = useState<MediaItem[]>([]);
  const [open, setOpen] = useState<MediaItem | null>(null);

  useEffect(() => {
    setItems([]);
    if (!character) return;
    fetch(`/api/characters/${character.id}/media`)
      .then((r) => (r.ok ? r.json() : { media: [] }))
      .then((j) => setItems(j.media ?? []))
      .catch(() => setItems([]));
  }, [character?.id, version]);

  if (!character) return <div className="p-6 text-sm text-zinc-500">{t.pickCharacter}</div>;
  const images = items.filter((i) => i.kind === 'image');
  const audio = items.filter((i) => i.kind === 'audio');

  return (
    <div className="scroll-thin flex min-h-0 flex-1 flex-col gap-5 overflow-y-auto p-4" data-testid="media-panel">
      <section>
        <h3 className="mb-2 text-xs font-semibold uppercase tracking-wide text-zinc-500">{t.avatar}</h3>
        {character.avatar_url ? (
          <img src={`${character.avatar_url}?v=${character.updated_at}`} alt={character.name} className="w-full rounded-xl object-cover" data-testid="media-avatar" />
        ) : (
          <p className="rounded-xl border border-dashed border-zinc-800 p-4 text-sm text-zinc-500">{t.noAvatar}</p>
        )}
      </section>
      <section>
        <h3 className="mb-2 text-xs font-semibold uppercase tracking-wide text-zinc-500">{t.images}</h3>
        {images.length === 0 ? (
          <p className="rounded-xl border border-dashed border-zinc-800 p-4 text-sm text-zinc-500">
            {format(t.mediaEmptyImages, { name: character.name })}
          </p>
        ) : (
          <div className="grid grid-cols-2 gap-2" data-testid="media-images">
            {images.map((i) => (
              <button key={i.id} onClick={() => setOpen(i)} aria-label={i.prompt ?? t.imageOpen}>
                <img src={i.url} alt={i.prompt ?? ''} title={i.prompt} className="aspect-square w-full rounded-lg object-cover" loading="lazy" />
              </button>
            ))}
          </div>
        )}
      </section>
      <section>
        <h3 className="mb-2 text-xs font-semibold uppercase tracking-wide text-zinc-500">{t.audio}</h3>
        {audio.length === 0 ? (
          <p className="rounded-xl border border-dashed border-zinc-800 p-4 text-sm text-zinc-500">{t.mediaEmptyAudio}</p>
        ) : (
          <ul className="space-y-2" data-testid="media-audio">
            {audio.map((a) => (
              <li key={a.id} className="flex items-start gap-2 rounded-lg bg-zinc-900 p-2 text-sm">
                <button
                  className="rounded-full bg-pink-700 px-2.5 py-1 text-xs text-white hover:bg-pink-800"
                  aria-label={t.playMessage}
                  onClick={() => {
                    const q = audioQueue();
                    q.unlock();
                    q.stop();
                    for (const u of a.urls ?? [a.url]) q.enqueue(u);
                  }}
                  data-testid="media-audio-play"
                >
                  ▶
                </button>
                <span className="min-w-0 flex-1">
                  <span className="line-clamp-2 break-words text-zinc-300">{a.text}</span>
                  <span className="text-xs text-zinc-500">
                    {a.seconds ? `${Math.round(a.seconds)} s · ` : ''}
                    {formatDate(t, a.created_at)}
                  </span>
                </span>
              </li>
            ))}
          </ul>
        )}
      </section>
      {open && <Lightbox url={open.url} caption={open.prompt} onClose={() => setOpen(null)} />}
    </div>
  );
}
