// CallButton: a hands-free voice call with the character (lib/call.ts). Tap to call, the hang-up
// button ends it. The button shows the call's state (data-state: idle, connecting, listening,
// hearing, thinking, speaking, reconnecting) and a live level meter. Before a call it explains what
// is missing (speech input or output not ready, per /api/health) instead of failing; a refused
// call says why as far as the page can tell (a browser WebSocket hides the HTTP answer).
import { useEffect, useRef, useState } from 'react';
import { api, type Health } from '../api/client';
import { useT } from '../i18n';
import { CallClient, storedCall, type CallEvent, type CallState } from '../lib/call';
import { errorText } from '../lib/errors';
import { microphoneAvailable } from '../lib/recorder';

interface Props {
  chatId: string;
  health: Health | null;
  disabled?: boolean;  // A typed reply is being written.
  onStart: () => void;
  onEvent: (e: CallEvent) => void;
  onEnd: () => void;
}

// Why a call cannot start now ('' when it can), from the health of speech input and output.
function missing(t: ReturnType<typeof useT>, health: Health | null): string {
  const c = health?.components;
  for (const [k, need] of [['stt', t.callNeedsStt], ['tts', t.callNeedsTts]] as const) {
    const x = c?.[k];
    if (x && x.state !== 'ready') return x.state === 'loading' ? t.callLoading : x.detail ? `${need} (${x.detail})` : need;
  }
  return '';
}

export function CallButton({ chatId, health, disabled, onStart, onEvent, onEnd }: Props) {
  const t = useT();
  const [state, setState] = useState<CallState>('idle');
  const [level, setLevel] = useState(0);
  const [played, setPlayed] = useState(0);
  const [note, setNote] = useState<{ text: string; reason: string } | null>(null);
  const client = useRef<CallClient | null>(null);
  const handlers = useRef({ onStart, onEvent, onEnd });
  handlers.current = { onStart, onEvent, onEnd };

  const why = missing(t, health);

  // Why the first connection did not open (a browser WebSocket hides the HTTP answer): the chat
  // says whether it has a call or a reply running, the health whether speech is set up.
  const explainRefusal = async () => {
    try {
      const [chat, h] = await Promise.all([api.chat(chatId), api.health().catch(() => null)]);
      if (chat.call) return setNote({ text: t.callActive, reason: 'call_active' });
      if (chat.generating) return setNote({ text: t.callTurnRunning, reason: 'turn_running' });
      const m = missing(t, h);
      if (m) return setNote({ text: m, reason: h?.components.stt.state !== 'ready' ? 'stt_off' : 'tts_off' });
      setNote({ text: t.callRefused, reason: 'refused' });
    } catch (e) {
      setNote({ text: `${t.callRefused} ${errorText(t, e)}`, reason: 'refused' });
    }
  };

  const start = (resume?: { callId: string; seq: number } | null) => {
    if (client.current) return;
    setNote(null);
    setPlayed(0);
    const c = new CallClient(chatId, {
      onState: setState,
      onEvent: (e) => handlers.current.onEvent(e),
      onLevel: setLevel,
      onPlayed: setPlayed,
      onEnd: (reason, detail) => {
        if (client.current === c) client.current = null;
        setState('idle');
        handlers.current.onEnd();
        if (reason === 'refused') {
          if (!resume) explainRefusal();
        } else if (reason === 'microphone') setNote({ text: `${t.micDenied} (${detail})`, reason });
        else if (reason === 'lost') setNote({ text: t.callLost, reason });
        else if (reason === 'call_active') setNote({ text: t.callActive, reason });
        else if (t.callEnded[reason]) setNote({ text: t.callEnded[reason], reason });
      },
    });
    client.current = c;
    handlers.current.onStart();
    c.start(resume);
  };

  // A call this tab had before a reload: pick it up again (the server keeps a dropped call a while).
  useEffect(() => {
    const stored = storedCall(chatId);
    if (stored && microphoneAvailable()) start(stored);
    return () => client.current?.hangup();
  }, []);  // eslint-disable-line react-hooks/exhaustive-deps

  const active = state !== 'idle';
  const blocked = !active && (!!why || !!disabled);
  const label = active ? t.callStates[state] : why || t.callStart;
  const colors: Record<CallState, string> = {
    idle: 'bg-zinc-800 text-zinc-300 hover:bg-zinc-700',
    connecting: 'bg-emerald-900 text-emerald-200 animate-pulse',
    listening: 'bg-emerald-800 text-white',
    hearing: 'bg-emerald-600 text-white',
    thinking: 'bg-amber-800 text-white',
    speaking: 'bg-pink-700 text-white',
    reconnecting: 'bg-amber-900 text-amber-200 animate-pulse',
  };
  return (
    <div className="relative flex items-end gap-1">
      {note && (
        <div className="absolute bottom-full left-0 z-10 mb-2 w-[min(20rem,80vw)] rounded-lg border border-amber-900 bg-amber-950/95 px-3 py-2 text-xs text-amber-200"
          role="status" data-testid="call-note" data-reason={note.reason}>
          {note.text}
          <button className="ml-2" aria-label={t.close} onClick={() => setNote(null)}>
            ✕
          </button>
        </div>
      )}
      <button
        className={`relative flex min-h-[2.75rem] min-w-[2.75rem] items-center justify-center overflow-hidden rounded-xl ${colors[state]} ${blocked ? 'opacity-40' : ''}`}
        aria-label={label}
        aria-disabled={blocked}
        title={label}
        data-testid="call"
        data-state={state}
        data-played-sentences={played}
        data-echo-cancellation={active ? String(client.current?.echoCancellation ?? '') : undefined}
        onClick={() => {
          if (active) return;
          // Explains on a tap too (a phone shows no tooltip).
          if (why) return setNote({ text: why, reason: health?.components.stt.state !== 'ready' ? 'stt_off' : 'tts_off' });
          if (disabled) return setNote({ text: t.callTurnRunning, reason: 'turn_running' });
          if (!microphoneAvailable()) return setNote({ text: t.micNeedsHttps, reason: 'https' });
          start();
        }}
      >
        {active && (
          <span className="absolute inset-x-0 bottom-0 bg-white/30 transition-[height] duration-75" style={{ height: `${Math.round(level * 100)}%` }}
            data-testid="call-level" data-level={level.toFixed(2)} />
        )}
        <span className="relative">
          <PhoneIcon />
        </span>
      </button>
      {active && (
        <button className="flex min-h-[2.75rem] min-w-[2.75rem] items-center justify-center rounded-xl bg-red-700 text-white hover:bg-red-800"
          aria-label={t.callHangup} title={t.callHangup} onClick={() => client.current?.hangup()} data-testid="hangup">
          <PhoneIcon down />
        </button>
      )}
      {active && <span className="hidden self-center whitespace-nowrap px-1 text-xs text-zinc-400 md:inline" data-testid="call-status">{t.callStates[state]}</span>}
      <span className="sr-only" aria-live="polite">{active ? `${t.callOn}: ${t.callStates[state]}` : ''}</span>
    </div>
  );
}

function PhoneIcon({ down }: { down?: boolean }) {
  return (
    <svg viewBox="0 0 24 24" width="18" height="18" fill="currentColor" aria-hidden="true" style={down ? { transform: 'rotate(135deg)' } : undefined}>
      <path d="M6.6 10.8a15.1 15.1 0 0 0 6.6 6.6l2.2-2.2a1 1 0 0 1 1-.25 11.4 11.4 0 0 0 3.6.57 1 1 0 0 1 1 1V20a1 1 0 0 1-1 1A17 17 0 0 1 3 4a1 1 0 0 1 1-1h3.5a1 1 0 0 1 1 1c0 1.25.2 2.45.57 3.57a1 1 0 0 1-.25 1z" />
    </svg>
  );
}
