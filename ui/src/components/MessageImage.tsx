// A picture in a message: progress while it renders (followed live over the job's SSE), the
// picture when done (click: full size), the reason when it failed, with retry and delete.
import { useEffect, useState } from 'react';
import { api, followJob, type MediaEntry } from '../api/client';
import { useT } from '../i18n';
import { errorText } from '../lib/errors';
import { useConfirm } from './ConfirmDialog';

export function MessageImage({ entry, onChanged }: { entry: MediaEntry; onChanged: () => void }) {
  const t = useT();
  const [confirmDialog, ask] = useConfirm();
  const [progress, setProgress] = useState(0);
  const [status, setStatus] = useState(entry.status ?? (entry.url ? 'done' : 'queued'));
  const [error, setError] = useState(entry.error ?? '');
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState(false);
  const pending = status === 'queued' || status === 'running';

  useEffect(() => {
    setStatus(entry.status ?? (entry.url ? 'done' : 'queued'));
    setError(entry.error ?? '');
  }, [entry.status, entry.url, entry.error, entry.job]);

  useEffect(() => {
    if (!entry.job || !(entry.status === 'queued' || entry.status === 'running' || (!entry.status && !entry.url))) return;
    return followJob(entry.job, (j) => {
      setProgress(j.progress);
      setStatus(j.status);
      if (j.error) setError(j.error);
      // The message now carries the picture (or the reason): show what the server stored.
      if (j.status === 'done' || j.status === 'failed' || j.status === 'cancelled') onChanged();
    });
  }, [entry.job]);  // eslint-disable-line react-hooks/exhaustive-deps

  const act = async (f: () => Promise<unknown>) => {
    setBusy(true);
    try {
      await f();
      onChanged();
    } catch (e) {
      setError(errorText(t, e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <figure className="mt-2 w-full max-w-sm" data-testid="message-image" data-status={status}>
      {confirmDialog}
      {status === 'done' && entry.url ? (
        <button className="block w-full overflow-hidden rounded-xl" onClick={() => setOpen(true)} aria-label={t.imageOpen}>
          <img src={entry.url} alt={entry.prompt ?? ''} className="w-full rounded-xl object-cover" loading="lazy" data-testid="message-image-img" />
        </button>
      ) : pending ? (
        <div className="flex aspect-[3/4] w-full flex-col items-center justify-center gap-3 rounded-xl border border-zinc-700 bg-zinc-900/60 p-4">
          <span className="text-sm text-zinc-400">{t.imageRendering}</span>
          <div className="h-1.5 w-3/4 overflow-hidden rounded-full bg-zinc-800" role="progressbar" aria-valuemin={0} aria-valuemax={100}
            aria-valuenow={Math.round(progress * 100)} data-testid="image-progress">
            <div className="h-full rounded-full bg-pink-500 transition-all" style={{ width: `${Math.max(4, Math.round(progress * 100))}%` }} />
          </div>
          <span className="text-xs text-zinc-500">{Math.round(progress * 100)} %</span>
        </div>
      ) : (
        <div className="rounded-xl border border-amber-900 bg-amber-950/40 p-3 text-xs text-amber-200" data-testid="image-error">
          <span className="font-medium">{status === 'cancelled' ? t.imageCancelled : t.imageFailed}</span>
          {error && status !== 'cancelled' && <span className="mt-1 block break-words">{error}</span>}
        </div>
      )}
      <figcaption className="mt-1 flex items-center gap-1 text-xs text-zinc-500">
        <span className="min-w-0 flex-1 truncate" title={entry.prompt}>{entry.prompt}</span>
        {entry.job && pending && (
          <button className="min-h-8 rounded px-2 hover:bg-zinc-800 hover:text-zinc-200" disabled={busy}
            onClick={() => act(() => api.cancelJob(entry.job!))} data-testid="image-cancel">
            {t.cancel}
          </button>
        )}
        {entry.job && !pending && (
          <button className="min-h-8 rounded px-2 hover:bg-zinc-800 hover:text-zinc-200" disabled={busy}
            onClick={() => act(() => api.retryImage(entry.job!))} title={t.imageRetry} aria-label={t.imageRetry} data-testid="image-retry">
            ↻
          </button>
        )}
        {entry.job && (
          <button className="min-h-8 rounded px-2 hover:bg-zinc-800 hover:text-red-400" disabled={busy}
            onClick={async () => {
              if (await ask(t.imageConfirmDelete)) await act(() => api.deleteImage(entry.job!));
            }}
            title={t.imageDelete} aria-label={t.imageDelete} data-testid="image-delete">
            ✕
          </button>
        )}
      </figcaption>
      {open && entry.url && <Lightbox url={entry.url} caption={entry.prompt} onClose={() => setOpen(false)} />}
    </figure>
  );
}

// The picture at full size over everything; Escape, a click or the button closes it.
export function Lightbox({ url, caption, onClose }: { url: string; caption?: string; onClose: () => void }) {
  const t = useT();
  useEffect(() => {
    const key = (e: KeyboardEvent) => e.key === 'Escape' && onClose();
    window.addEventListener('keydown', key);
    return () => window.removeEventListener('keydown', key);
  }, [onClose]);
  return (
    <div className="fixed inset-0 z-50 flex flex-col items-center justify-center gap-2 bg-black/90 p-4" role="dialog" aria-modal="true"
      aria-label={caption || t.picture} onClick={onClose} data-testid="lightbox">
      <img src={url} alt={caption ?? ''} className="max-h-[85vh] max-w-full rounded-lg object-contain" />
      {caption && <p className="max-w-2xl text-center text-sm text-white/80">{caption}</p>}
      <div className="flex gap-3 text-sm">
        <a href={url} download className="rounded-lg bg-zinc-800 px-3 py-2 hover:bg-zinc-700" onClick={(e) => e.stopPropagation()}>
          {t.imageDownload}
        </a>
        <button className="rounded-lg bg-zinc-800 px-3 py-2 hover:bg-zinc-700" onClick={onClose} data-testid="lightbox-close">
          {t.close}
        </button>
      </div>
    </div>
  );
}
