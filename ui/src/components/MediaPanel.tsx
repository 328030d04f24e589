// MediaPanel: the character's avatar, generated images and audio, with empty states that say what
// will appear there.
import { useEffect, useState } from 'react';
import type { Character } from '../api/client';
import { format, useT } from '../i18n';

interface MediaItem {
  id: string;
  kind: 'image' | 'audio';
  url: string;
  prompt?: string;
  created_at: number;
}

export function MediaPanel({ character, version }: { character: Character | null; version: number }) {
  const t = useT();
  const [items, setItems] = useState<MediaItem[]>([]);

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
          <div className="grid grid-cols-2 gap-2">
            {images.map((i) => (
              <a key={i.id} href={i.url} target="_blank" rel="noreferrer">
                <img src={i.url} alt={i.prompt ?? ''} title={i.prompt} className="aspect-square w-full rounded-lg object-cover" />
              </a>
            ))}
          </div>
        )}
      </section>
      <section>
        <h3 className="mb-2 text-xs font-semibold uppercase tracking-wide text-zinc-500">{t.audio}</h3>
        {audio.length === 0 ? (
          <p className="rounded-xl border border-dashed border-zinc-800 p-4 text-sm text-zinc-500">{t.mediaEmptyAudio}</p>
        ) : (
          audio.map((a) => <audio key={a.id} controls src={a.url} className="mb-2 w-full" />)
        )}
      </section>
    </div>
  );
}
