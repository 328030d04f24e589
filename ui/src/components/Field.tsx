import { useEffect, type ReactNode } from 'react';

// A labelled form field that shows the server's validation error for it.
export function Field({ label, error, children }: { label: string; error?: string; children: ReactNode }) {
  return (
    <label className="flex flex-col gap-1 text-sm">
      <span className="text-zinc-400">{label}</span>
      {children}
      {error && (
        <span className="text-xs text-red-400" role="alert" data-testid="field-error">
          {error}
        </span>
      )}
    </label>
  );
}

export const inputClass =
  'rounded-lg bg-zinc-900 px-3 py-2 outline-none ring-pink-500 focus:ring-1 aria-[invalid=true]:ring-1 aria-[invalid=true]:ring-red-500';

// After a refused save: bring the first marked field into view (the form may be long, the save
// button at its end). An effect, so it runs once the marks are on the page (a frame callback ran
// before React had drawn them, and nothing moved).
export function useRevealFirstError(errors: Record<string, string>) {
  useEffect(() => {
    if (Object.keys(errors).length === 0) return;
    document.querySelector('[data-testid=field-error]')?.scrollIntoView({ block: 'center' });
  }, [errors]);
}
