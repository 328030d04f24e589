// A file chooser styled like our buttons (the browser's own is wide on phones and speaks the
// browser's language): the chosen file's name, or "no file chosen", in the UI's language.
import { useState } from 'react';
import { useT } from '../i18n';

export function FilePicker({ accept, label, name: accessibleName, testId, onFile }: {
  accept: string;
  label: string;
  name?: string;  // what a screen reader calls the chooser, where the label alone is vague
  testId: string;
  onFile: (f: File | null) => void;
}) {
  const t = useT();
  const [name, setName] = useState<string | null>(null);
  return (
    <span className="flex min-w-0 items-center gap-2">
      {/* Inside a Field (a <label>): a click anywhere opens the chooser. */}
      <span className="flex min-h-10 shrink-0 cursor-pointer items-center rounded-lg bg-zinc-800 px-3 text-sm hover:bg-zinc-700 focus-within:ring-1 focus-within:ring-pink-500">
        {label}
        <input
          type="file"
          accept={accept}
          className="sr-only"
          aria-label={accessibleName ?? label}
          data-testid={testId}
          onChange={(e) => {
            const f = e.target.files?.[0] ?? null;
            setName(f?.name ?? null);
            onFile(f);
          }}
        />
      </span>
      <span className="min-w-0 truncate text-xs text-zinc-500">{name ?? t.noFileChosen}</span>
    </span>
  );
}
