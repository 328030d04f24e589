// One confirmation dialog for every destructive action (a character, a message, a picture), in the
// UI's language and style instead of the browser's confirm(). Esc or Cancel says no; the focus starts
// on Cancel so Enter never deletes by accident.
import { useCallback, useEffect, useRef, useState, type ReactNode } from 'react';
import { useT } from '../i18n';

interface Pending {
  text: string;
  resolve: (ok: boolean) => void;
}

export function useConfirm(): [ReactNode, (text: string) => Promise<boolean>] {
  const t = useT();
  const [pending, setPending] = useState<Pending | null>(null);
  const cancelRef = useRef<HTMLButtonElement>(null);
  const ask = useCallback((text: string) => new Promise<boolean>((resolve) => setPending({ text, resolve })), []);
  const answer = (ok: boolean) => {
    pending?.resolve(ok);
    setPending(null);
  };
  useEffect(() => {
    if (!pending) return;
    cancelRef.current?.focus();
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') {
        e.stopPropagation();
        pending.resolve(false);
        setPending(null);
      }
    };
    window.addEventListener('keydown', onKey, true);
    return () => window.removeEventListener('keydown', onKey, true);
  }, [pending]);
  const dialog = pending ? (
    <div className="fixed inset-0 z-50 flex items-center justify-center bg-black/60 p-4" role="dialog" aria-modal="true" aria-labelledby="confirm-dialog-text" data-testid="confirm-dialog">
      <div className="w-full max-w-sm rounded-2xl bg-zinc-900 p-5">
        <p id="confirm-dialog-text" className="mb-4 text-sm">{pending.text}</p>
        <div className="flex justify-end gap-2">
          <button ref={cancelRef} className="min-h-10 rounded-lg px-3 py-2 text-sm hover:bg-zinc-800" onClick={() => answer(false)} data-testid="confirm-cancel">
            {t.cancel}
          </button>
          <button className="min-h-10 rounded-lg bg-red-700 px-3 py-2 text-sm text-white hover:bg-red-800" onClick={() => answer(true)} data-testid="confirm-delete">
            {t.delete}
          </button>
        </div>
      </div>
    </div>
  ) : null;
  return [dialog, ask];
}
