import type { Character } from '../api/client';

export function Avatar({ character, size = 40 }: { character: Pick<Character, 'name' | 'avatar_url' | 'updated_at'>; size?: number }) {
  const style = { width: size, height: size };
  if (character.avatar_url) {
    return (
      <img
        src={`${character.avatar_url}?v=${character.updated_at}`}
        alt=""
        style={style}
        className="shrink-0 rounded-full object-cover"
      />
    );
  }
  return (
    <div style={style} className="flex shrink-0 items-center justify-center rounded-full bg-pink-900/60 font-semibold text-pink-200">
      {character.name.slice(0, 1).toUpperCase()}
    </div>
  );
}
