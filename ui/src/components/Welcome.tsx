// The first run: no characters yet. Your name (chat.user_name, what {{user}} becomes) and the
// language model (ModelPicker); then the ordinary screen, where the first character is made or
// imported. "Set up later" skips it; this browser remembers either choice.
import { useEffect, useState } from 'react';
import { api } from '../api/client';
import { useT } from '../i18n';
import { fieldErrors } from '../lib/errors';
import { Field, inputClass } from './Field';
import { ModelPicker } from './ModelPicker';

export const WELCOMED_KEY = 'mycandy.welcomed';

export function Welcome({ onDone, onModelChanged }: { onDone: (userName?: string) => void; onModelChanged?: () => void }) {
  const t = useT();
  const [name, setName] = useState('');
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    api.settings().then((s) => setName((n) => n || String(s.chat?.user_name ?? ''))).catch(() => {});
  }, []);

  const finish = async (save: boolean) => {
    setError(null);
    if (save && name.trim()) {
      try {
        await api.patchSettings({ chat: { user_name: name.trim() } });
      } catch (e) {
        const errs = fieldErrors(t, e, (f) => f === 'chat.user_name');
        setError(errs['chat.user_name'] ?? errs._form ?? null);
        return;
      }
    }
    try {
      localStorage.setItem(WELCOMED_KEY, '1');
    } catch {
      // Private mode: it will ask again next time.
    }
    onDone(save && name.trim() ? name.trim() : undefined);
  };

  return (
    <div className="scroll-thin flex-1 overflow-y-auto px-4 py-6" data-testid="welcome">
      <div className="mx-auto max-w-xl space-y-6">
        <div>
          <h2 className="text-2xl font-semibold">{t.welcomeTitle}</h2>
          <p className="mt-2 text-sm text-zinc-400">{t.welcomeIntro}</p>
        </div>
        <Field label={t.yourName} error={error ?? undefined}>
          <input className={inputClass} value={name} maxLength={100} autoComplete="given-name" onChange={(e) => setName(e.target.value)}
            aria-invalid={!!error} data-testid="welcome-name" />
        </Field>
        <section className="space-y-2 rounded-xl border border-zinc-800 p-4">
          <h3 className="font-medium">{t.modelSection}</h3>
          <ModelPicker onChanged={onModelChanged} />
        </section>
        <div className="flex flex-wrap justify-end gap-2">
          <button className="min-h-10 rounded-lg px-4 py-2 text-sm text-zinc-300 hover:bg-zinc-800" onClick={() => finish(false)} data-testid="welcome-later">
            {t.welcomeLater}
          </button>
          <button className="min-h-10 rounded-lg bg-pink-700 px-4 py-2 text-sm font-medium text-white hover:bg-pink-800" onClick={() => finish(true)} data-testid="welcome-start">
            {t.welcomeStart}
          </button>
        </div>
      </div>
    </div>
  );
}
