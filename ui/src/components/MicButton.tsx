// MicButton: talk instead of type. Tap to start and tap again to stop, or hold while speaking and
// let go; Alt+M does the same from the keyboard and Esc cancels. A live level meter shows that the
// microphone hears you; the recognized text goes to `onText` (the chat puts it into the message
// box or sends it, as the settings say).
import { useCallback, useEffect, useRef, useState } from 'react';
import { transcribe } from '../api/stt';
import { useT } from '../i18n';
import { errorText } from '../lib/errors';
import { Recorder, microphoneAvailable } from '../lib/recorder';

interface Props {
  onText: (text: string) => void | Promise<void>;
  prompt: () => string;
  disabled?: boolean;
}

type State = 'idle' | 'starting' | 'recording' | 'transcribing';

const HOLD_MS = 450;  // Held longer than this: press-to-talk (letting go stops).

export function MicButton({ onText, prompt, disabled }: Props) {
  const t = useT();
  const [state, setState] = useState<State>('idle');
  const [level, setLevel] = useState(0);
  const [note, setNote] = useState<string | null>(null);
  const [recordedType, setRecordedType] = useState('');
  const recorder = useRef<Recorder | null>(null);
  const downAt = useRef(0);
  const stateRef = useRef<State>('idle');
  stateRef.current = state;

  const start = useCallback(async () => {
    setNote(null);
    if (!microphoneAvailable()) {
      setNote(t.micNeedsHttps);
      return;
    }
    const r = new Recorder();
    recorder.current = r;
    setState('starting');
    try {
      await r.start(setLevel);
      if (recorder.current !== r) {
        r.cancel();  // Cancelled while the browser asked for permission.
        return;
      }
      setState('recording');
    } catch (e) {
      recorder.current = null;
      setState('idle');
      setNote(`${t.micDenied} (${e instanceof Error ? e.message : String(e)})`);
    }
  }, [t]);

  const cancel = useCallback(() => {
    recorder.current?.cancel();
    recorder.current = null;
    setLevel(0);
    setState('idle');
  }, []);

  const finish = useCallback(async () => {
    const r = recorder.current;
    if (!r || stateRef.current !== 'recording') return;
    recorder.current = null;
    setState('transcribing');
    setLevel(0);
    try {
      const blob = await r.stop();
      setRecordedType(blob.type);
      const result = await transcribe(blob, { prompt: prompt() });
      if (result.text.trim()) await onText(result.text.trim());
      else setNote(t.micNothingHeard);
    } catch (e) {
      setNote(errorText(t, e));
    } finally {
      setState('idle');
    }
  }, [onText, prompt, t]);

  const toggle = useCallback(() => {
    if (stateRef.current === 'idle') start();
    else if (stateRef.current === 'recording') finish();
  }, [start, finish]);

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.altKey && (e.key === 'm' || e.key === 'M' || e.code === 'KeyM')) {
        e.preventDefault();
        toggle();
      } else if (e.key === 'Escape' && (stateRef.current === 'recording' || stateRef.current === 'starting')) {
        cancel();
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [toggle, cancel]);

  useEffect(() => () => recorder.current?.cancel(), []);

  const recording = state === 'recording' || state === 'starting';
  const label = state === 'transcribing' ? t.micTranscribing : recording ? t.micStop : t.micStart;
  return (
    <div className="relative flex items-end gap-1">
      {note && (
        <div className="absolute bottom-full left-0 mb-2 w-[min(20rem,80vw)] rounded-lg border border-amber-900 bg-amber-950/90 px-3 py-2 text-xs text-amber-200" data-testid="mic-note">
          {note}
          <button className="ml-2" aria-label={t.close} onClick={() => setNote(null)}>
            ✕
          </button>
        </div>
      )}
      <button
        className={`relative flex min-h-[2.75rem] min-w-[2.75rem] items-center justify-center overflow-hidden rounded-xl ${
          recording ? 'bg-red-700 text-white' : 'bg-zinc-800 text-zinc-300 hover:bg-zinc-700'
        } disabled:opacity-40`}
        disabled={disabled || state === 'transcribing'}
        aria-label={label}
        aria-pressed={recording}
        title={`${label} (Alt+M)`}
        data-testid="mic"
        data-state={state}
        data-recorded-type={recordedType}
        onPointerDown={(e) => {
          e.preventDefault();
          downAt.current = Date.now();
          if (stateRef.current === 'idle') start();
          else if (stateRef.current === 'recording') finish();
        }}
        onPointerUp={() => {
          // Held: press-to-talk ends when the finger or button lets go.
          if (stateRef.current === 'recording' && Date.now() - downAt.current > HOLD_MS) finish();
        }}
        onKeyDown={(e) => {
          if (e.key === 'Enter' || e.key === ' ') {
            e.preventDefault();
            toggle();
          }
        }}
      >
        {recording && (
          <span className="absolute inset-x-0 bottom-0 bg-red-400/60 transition-[height] duration-75" style={{ height: `${Math.round(level * 100)}%` }} data-testid="mic-level" data-level={level.toFixed(2)} />
        )}
        <span className="relative">{state === 'transcribing' ? '…' : <MicIcon />}</span>
      </button>
      {recording && (
        <button className="min-h-[2.75rem] min-w-[2.75rem] rounded-xl bg-zinc-800 text-zinc-300 hover:bg-zinc-700" aria-label={t.micCancel} title={`${t.micCancel} (Esc)`} onClick={cancel} data-testid="mic-cancel">
          ✕
        </button>
      )}
    </div>
  );
}

function MicIcon() {
  return (
    <svg viewBox="0 0 24 24" width="18" height="18" fill="none" stroke="currentColor" strokeWidth="2" strokeLinecap="round" strokeLinejoin="round" aria-hidden="true">
      <rect x="9" y="3" width="6" height="11" rx="3" fill="currentColor" />
      <path d="M5 11a7 7 0 0 0 14 0" />
      <path d="M12 18v3" />
    </svg>
  );
}
