import { useEffect, useId, type ReactNode } from 'react';
import { useT } from '../i18n';

// A panel sliding in from the right (full screen on a phone): title, close button, scrolling body,
// optional footer. Escape closes it (unless a picture's full view is open over it).
export function Drawer(props: {
  title: ReactNode;
  onClose: () => void;
  testId: string;
  closeTestId?: string;
  wide?: boolean;
  footer?: ReactNode;
  children: ReactNode;
}) {
  const t = useT();
  const { onClose } = props;
  const titleId = useId();
  useEffect(() => {
    const key = (e: KeyboardEvent) => {
      if (e.key === 'Escape' && !document.querySelector('[data-testid=lightbox]')) onClose();
    };
    window.addEventListener('keydown', key);
    return () => window.removeEventListener('keydown', key);
  }, [onClose]);
  return (
    <div className="fixed inset-0 z-40 flex justify-end bg-black/60" role="dialog" aria-modal="true" aria-labelledby={titleId} data-testid={props.testId}>
      <div
        className={`flex h-full w-full ${props.wide ? 'max-w-2xl' : 'max-w-xl'} flex-col bg-zinc-950 shadow-2xl md:border-l md:border-zinc-800`}
      >
        <div className="flex items-center gap-3 border-b border-zinc-800 px-5 py-3">
          <h2 id={titleId} className="flex-1 text-lg font-semibold">{props.title}</h2>
          <button className="rounded-lg px-3 py-1.5 text-sm hover:bg-zinc-800" onClick={props.onClose} data-testid={props.closeTestId}>
            {t.close}
          </button>
        </div>
        <div className="scroll-thin flex-1 space-y-5 overflow-y-auto px-5 py-4">{props.children}</div>
        {props.footer && <div className="flex items-center justify-end gap-3 border-t border-zinc-800 px-5 py-3">{props.footer}</div>}
      </div>
    </div>
  );
}
