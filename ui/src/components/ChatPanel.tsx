// ChatPanel: the character's chats; replies stream in token by token; swipes, regenerate,
// continue, edit, delete, stop; errors inline with a retry. With the speaker on, each sentence is
// played as soon as its audio arrives; every reply has a play button. Pictures a reply asks for
// appear in it with their progress; the camera button asks for one directly. The microphone button
// turns speech into the message's text (MicButton); the call button starts a hands-free voice call
// whose words and replies appear here as they happen (CallButton).
import { useCallback, useEffect, useLayoutEffect, useRef, useState } from 'react';
import { ApiError, api, attachTurn, runTurn, type TurnHandlers, type Character, type Chat, type Health, type MediaEntry, type Message, type PromptPreview } from '../api/client';
import { format, formatDate, formatTime, useT } from '../i18n';
import { errorText } from '../lib/errors';
import { audioQueue, replyAudio, type QueueState } from '../lib/audioQueue';
import { Markdown } from '../lib/markdown';
import { fillMacros } from '../lib/macros';
import { sttPrompt } from '../api/stt';
import { Avatar } from './Avatar';
import { MemoryPanel } from './MemoryPanel';
import { ChatList, chatName } from './ChatList';
import { useConfirm } from './ConfirmDialog';
import { MessageImage } from './MessageImage';
import { MicButton } from './MicButton';
import { CallButton } from './CallButton';
import type { CallEvent } from '../lib/call';

const PAGE = 100;  // Messages per page in the chat view.
const JUMP_PAGE = 500;  // Per page while loading back to a search result.

interface Props {
  character: Character | null;
  userName?: string;
  onEdit: () => void;
  onActivity: () => void;
  // The chat named in the page's address (/ui/c/{character}/chat/{chat}); the panel opens it and
  // reports the chat it shows, so the address follows (reload and back/forward restore it).
  routeChatId?: string | null;
  onChatShown?: (chatId: string) => void;
  health?: Health | null;  // Whether speech input and output are ready (the call button).
}

type Kind = 'messages' | 'regenerate' | 'continue';

interface Streaming {
  kind: Kind;
  targetId?: string;  // The reply being regenerated or continued.
  base: string;       // Text the stream extends (continue).
  text: string;
  images: MediaEntry[];  // Pictures the reply asked for so far.
}

export function ChatPanel({ character, userName = 'User', onEdit, onActivity, routeChatId = null, onChatShown, health = null }: Props) {
  const t = useT();
  const [confirmDialog, ask] = useConfirm();
  const [chats, setChats] = useState<Chat[]>([]);
  const [chatId, setChatId] = useState<string | null>(null);
  const [messages, setMessages] = useState<Message[]>([]);
  const messagesRef = useRef(messages);
  messagesRef.current = messages;
  const [streaming, setStreaming] = useState<Streaming | null>(null);
  const [error, setError] = useState<{ message: string; retry?: () => void } | null>(null);
  const [draft, setDraft] = useState('');
  // The message box grows with its text (up to its max-h-48, then it scrolls) and shrinks back.
  const composerRef = useRef<HTMLTextAreaElement>(null);
  useLayoutEffect(() => {
    const el = composerRef.current;
    if (!el) return;
    el.style.height = 'auto';
    if (draft) el.style.height = `${el.scrollHeight + (el.offsetHeight - el.clientHeight)}px`;
  }, [draft]);
  const [editingId, setEditingId] = useState<string | null>(null);
  const [editText, setEditText] = useState('');
  const [showMemory, setShowMemory] = useState(false);
  const [showChats, setShowChats] = useState(false);
  // Only the newest page of a long chat is loaded; older pages on request or for a search result.
  const [hasOlder, setHasOlder] = useState(false);
  const [flashId, setFlashId] = useState<string | null>(null);  // A message just jumped to.
  // How full the next prompt is (the context bar under the header).
  const [usage, setUsage] = useState<PromptPreview | null>(null);
  const refreshUsage = useCallback((id: string) => {
    api.promptPreview(id).then((p) => shownChatRef.current === id && setUsage(p)).catch(() => setUsage(null));
  }, []);
  const keepScroll = useRef<number | null>(null);  // scrollHeight before older messages were put on top.
  // The chat's menu (⋯): import a chat file as a new chat, export this one.
  const [menuOpen, setMenuOpen] = useState(false);
  const chatFileRef = useRef<HTMLInputElement>(null);
  useEffect(() => {
    if (!menuOpen) return;
    const onKey = (e: KeyboardEvent) => e.key === 'Escape' && setMenuOpen(false);
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [menuOpen]);
  const scroller = useRef<HTMLDivElement>(null);
  // Message changes on their way to the server (a swipe, an edit, a hide, a delete), sent one after
  // another in the order they were made (two quick swipes sent at once could arrive swapped and
  // store the first). A turn waits for them: the server refuses a change while a reply is written,
  // so a swipe tapped just before Send would otherwise be refused and set back.
  const changesInFlight = useRef(new Set<Promise<unknown>>());
  const lastChange = useRef<Promise<unknown>>(Promise.resolve());
  const storing = <T,>(send: () => Promise<T>): Promise<T> => {
    const p = lastChange.current.then(send, send);
    lastChange.current = p.catch(() => {});
    changesInFlight.current.add(p);
    const done = () => changesInFlight.current.delete(p);
    p.then(done, done);
    return p;
  };
  const stickToBottom = useRef(true);
  // Speech: the speaker toggle is per chat (remembered in this browser); without a choice the
  // settings' media.tts_enabled decides.
  const queue = audioQueue();
  const [ttsDefault, setTtsDefault] = useState(true);
  const [speakChoice, setSpeakChoice] = useState<boolean | null>(null);
  const speak = speakChoice ?? ttsDefault;
  const speakRef = useRef(speak);
  speakRef.current = speak;
  const [audio, setAudio] = useState<QueueState>(queue.state());
  const [playingId, setPlayingId] = useState<string | null>(null);
  const [voiceNote, setVoiceNote] = useState<string | null>(null);
  const [askImage, setAskImage] = useState<string | null>(null);  // The "send me a picture" box (null: closed).
  const [imageNote, setImageNote] = useState<string | null>(null);
  // A voice call runs in this chat; the replies the person spoke over (their partial text says
  // "interrupted"; the stored message says it too, in its gen entry).
  const [calling, setCalling] = useState(false);
  const [interrupted, setInterrupted] = useState<Set<string>>(() => new Set());

  useEffect(() => queue.subscribe(setAudio), [queue]);
  useEffect(() => {
    if (!audio.playing && audio.pending === 0) setPlayingId(null);
  }, [audio]);
  // Speech in: the recognized text goes into the box, or is sent at once (stt.auto_send).
  const [sttAutoSend, setSttAutoSend] = useState(false);
  useEffect(() => {
    api
      .settings()
      .then((s) => {
        setTtsDefault(s.media?.tts_enabled !== false);
        setSttAutoSend(s.stt?.auto_send === true);
      })
      .catch(() => {});
  }, []);
  useEffect(() => {
    const stored = chatId ? localStorage.getItem(`mc.speak.${chatId}`) : null;
    setSpeakChoice(stored === null ? null : stored === '1');
  }, [chatId]);

  const toggleSpeaker = () => {
    const next = !speak;
    if (chatId) localStorage.setItem(`mc.speak.${chatId}`, next ? '1' : '0');
    setSpeakChoice(next);
    if (next) queue.unlock();
    else queue.stop();
  };

  // Plays a reply: its stored sentence audio, or (older replies, speaker was off) synthesized now.
  const play = async (m: Message) => {
    queue.unlock();
    queue.stop();
    if (playingId === m.id) {
      setPlayingId(null);
      return;
    }
    setVoiceNote(null);
    const stored = replyAudio(m);
    setPlayingId(m.id);
    if (stored.length > 0) {
      for (const url of stored) queue.enqueue(url);
      return;
    }
    try {
      const wav = await api.tts(character ? fillMacros(m.content, character.name, userName) : m.content, character?.id);
      queue.enqueue(URL.createObjectURL(wav));
    } catch (e) {
      setPlayingId(null);
      setVoiceNote(errorText(t, e));
    }
  };

  const routeChatRef = useRef(routeChatId);
  routeChatRef.current = routeChatId;
  const onChatShownRef = useRef(onChatShown);
  onChatShownRef.current = onChatShown;
  const attachRef = useRef<(id: string) => void>(() => {});

  // The chat shown, for answers that arrive later: what belongs to another chat (or character) by
  // then is dropped, so a slow answer never replaces what the person opened since.
  const shownChatRef = useRef<string | null>(null);
  const loadChat = useCallback(async (id: string) => {
    shownChatRef.current = id;
    setChatId(id);
    onChatShownRef.current?.(id);
    setError(null);
    const list = await api.messages(id);
    if (shownChatRef.current !== id) return;
    setMessages(list);
    setHasOlder(list.length >= PAGE);
    refreshUsage(id);
    stickToBottom.current = true;
    // A reply may still be written (the page was reloaded mid-reply): follow it to its end.
    const chat = await api.chat(id).catch(() => null);
    if (chat?.generating && shownChatRef.current === id) attachRef.current(id);
  }, []);

  useEffect(() => {
    shownChatRef.current = null;
    setChats([]);
    setChatId(null);
    setMessages([]);
    setUsage(null);
    setError(null);
    if (!character) return;
    let cancelled = false;  // Another character was opened before this one's chats arrived.
    (async () => {
      let list = await api.chats(character.id);
      if (cancelled) return;
      if (list.length === 0) {
        await api.createChat(character.id);
        list = await api.chats(character.id);
        if (cancelled) return;
      }
      setChats(list);
      const wanted = list.find((c) => c.id === routeChatRef.current);
      await loadChat((wanted ?? list[0]).id);
    })();
    return () => {
      cancelled = true;
    };
  }, [character?.id, loadChat]);

  // Back/forward to another chat of the same character.
  useEffect(() => {
    if (routeChatId && chatId && routeChatId !== chatId && chats.some((c) => c.id === routeChatId)) loadChat(routeChatId);
  }, [routeChatId]);  // eslint-disable-line react-hooks/exhaustive-deps

  // Follow new text while the reader is at the bottom; leave them be when they scrolled up.
  useLayoutEffect(() => {
    const el = scroller.current;
    if (el && stickToBottom.current) el.scrollTop = el.scrollHeight;
  }, [messages, streaming]);

  // Older messages go on top without moving what the reader looks at.
  useLayoutEffect(() => {
    const el = scroller.current;
    if (el && keepScroll.current !== null) {
      el.scrollTop += el.scrollHeight - keepScroll.current;
      keepScroll.current = null;
    }
  }, [messages]);

  const loadEarlier = async () => {
    if (!chatId || !messages.length) return;
    const id = chatId;
    const older = await api.messages(id, messages[0].id, PAGE).catch(() => null);
    if (!older || shownChatRef.current !== id) return;
    keepScroll.current = scroller.current?.scrollHeight ?? null;
    stickToBottom.current = false;
    setMessages((ms) => [...older.filter((o) => !ms.some((m) => m.id === o.id)), ...ms]);
    setHasOlder(older.length >= PAGE);
  };

  // A search result: load pages back until the message is there, then show it in the middle.
  const jumpTo = async (messageId: string) => {
    setShowMemory(false);
    if (!chatId) return;
    const id = chatId;
    let list = messages;
    let more = hasOlder;
    for (let pages = 0; !list.some((m) => m.id === messageId) && more && pages < 200 && list.length; pages++) {
      const older = await api.messages(id, list[0].id, JUMP_PAGE).catch(() => null);
      if (!older || shownChatRef.current !== id) return;
      list = [...older, ...list];
      more = older.length >= JUMP_PAGE;
    }
    stickToBottom.current = false;
    setMessages(list);
    setHasOlder(more);
    setFlashId(messageId);
  };

  useEffect(() => {
    if (!flashId) return;
    document.querySelector(`[data-message-id="${flashId}"]`)?.scrollIntoView({ block: 'center' });
    const timer = setTimeout(() => setFlashId(null), 2500);
    return () => clearTimeout(timer);
  }, [flashId]);

  const onScroll = () => {
    const el = scroller.current;
    if (el) stickToBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 80;
  };

  const turn = async (kind: Kind, body: unknown, target?: Message) => {
    if (!chatId) return;
    setError(null);
    setStreaming({ kind, targetId: target?.id, base: kind === 'continue' && target ? target.content : '', text: '', images: [] });
    stickToBottom.current = true;
    queue.stop();
    setPlayingId(null);
    setVoiceNote(null);
    const speakNow = speakRef.current;
    if (speakNow) queue.unlock();
    body = { ...(body as object), ...(speakChoice === null ? {} : { speak: speakNow }) };
    const retry = () => turn(kind === 'messages' ? 'regenerate' : kind, kind === 'messages' ? {} : body, target);
    try {
      if (changesInFlight.current.size > 0) await Promise.allSettled([...changesInFlight.current]);
      await runTurn(chatId, kind, body, turnHandlers(retry));
    } catch (e) {
      setError({ message: errorText(t, e), retry });
    } finally {
      // The stored messages first, then the controls come back: a swipe or edit made in between
      // would be overwritten by this older list (seen under load: a swipe undone, then Right
      // regenerated instead of stepping).
      const list = await api.messages(chatId).catch(() => null);
      setStreaming(null);
      if (list && shownChatRef.current === chatId) {
        setMessages(list);
        setHasOlder(list.length >= PAGE);
        refreshUsage(chatId);
      }
      onActivity();
    }
  };

  // What a turn's events do, for a turn this page started and one it attached to.
  const turnHandlers = (retry?: () => void): TurnHandlers => ({
        onUser: (m) => setMessages((ms) => (ms.some((x) => x.id === m.id) ? ms : [...ms, m])),
        onToken: (text) => setStreaming((s) => (s ? { ...s, text: s.text + text } : s)),
        onDone: (m) =>
          setMessages((ms) => (ms.some((x) => x.id === m.id) ? ms.map((x) => (x.id === m.id ? m : x)) : [...ms, m])),
        onError: (e) => setError({ message: errorText(t, new ApiError(500, e)), retry }),
        // Sentences play as they arrive; the toggle may be switched off mid-reply.
        onAudio: (_index, url) => {
          if (speakRef.current) queue.enqueue(url);
        },
        onAudioError: (e) => setVoiceNote(errorText(t, new ApiError(500, e))),
        onImage: (job, prompt) =>
          setStreaming((s) => (s ? { ...s, images: [...s.images, { kind: 'image', job: job.id, prompt, status: 'queued' }] } : s)),
        onTurn: (kind, targetId) =>
          setStreaming((s) => {
            if (!s) return s;
            const target = targetId ? messagesRef.current.find((m) => m.id === targetId) : undefined;
            return { ...s, kind, targetId: targetId ?? undefined, base: kind === 'continue' && target ? target.content : '' };
          }),
  });

  // A call's events: the same handling as a typed turn's (the person's words arrive as `user`).
  const callChatRef = useRef<string | null>(null);
  const onCallEvent = (e: CallEvent) => {
    if (shownChatRef.current !== callChatRef.current) return;
    const h = turnHandlers();
    if (e.type === 'user') {
      h.onUser?.(e.message);
      stickToBottom.current = true;
      setError(null);
      setStreaming({ kind: 'messages', base: '', text: '', images: [] });
    } else if (e.type === 'token') {
      setStreaming((s) => s ?? { kind: 'messages', base: '', text: '', images: [] });
      h.onToken?.(e.text);
    } else if (e.type === 'done') {
      h.onDone?.(e.message, e.finish_reason, e.timings);
      if (e.interrupted && e.message?.id) setInterrupted((x) => new Set(x).add(e.message.id));
      setStreaming(null);
      if (chatId) refreshUsage(chatId);
    } else if (e.type === 'heard') {
      // Talked over: the reply is cut to what was heard (the rest is in its gen entry).
      const m = e.message as Message | undefined;
      if (m?.id) {
        setMessages((ms) => ms.map((x) => (x.id === m.id ? m : x)));
        setInterrupted((x) => new Set(x).add(m.id));
      }
    } else if (e.type === 'image') h.onImage?.(e.job, e.prompt);
    else if (e.type === 'audio_error') h.onAudioError?.(e.error);
    else if (e.type === 'error') h.onError?.(e.error);
  };
  const callEnded = async () => {
    setCalling(false);
    setStreaming(null);
    const id = callChatRef.current;
    const list = id ? await api.messages(id).catch(() => null) : null;
    if (list && id && shownChatRef.current === id) {
      setMessages(list);
      setHasOlder(list.length >= PAGE);
      refreshUsage(id);
    }
    onActivity();
  };

  // Follows a reply that was already being written when this chat was opened.
  attachRef.current = async (id: string) => {
    setStreaming({ kind: 'messages', base: '', text: '', images: [] });
    stickToBottom.current = true;
    try {
      await attachTurn(id, turnHandlers());
    } catch (e) {
      // 404: it ended between the look and the attach; the stored reply is loaded below.
      if (!(e instanceof ApiError && e.status === 404)) setError({ message: errorText(t, e) });
    } finally {
      const list = await api.messages(id).catch(() => null);  // Before the controls come back (see turn()).
      setStreaming(null);
      if (list && shownChatRef.current === id) {
        setMessages(list);
        setHasOlder(list.length >= PAGE);
      }
      onActivity();
    }
  };

  // A picture finished or was retried/deleted: the message and the media panel show it.
  const reload = useCallback(async () => {
    if (chatId) {
      const list = await api.messages(chatId);
      if (shownChatRef.current === chatId) {
        setMessages(list);
        setHasOlder(list.length >= PAGE);
      }
    }
    onActivity();
  }, [chatId, onActivity]);

  const requestImage = async () => {
    if (!character || !chatId || askImage === null) return;
    const prompt = askImage.trim() || 'selfie, looking at viewer, smiling';
    setAskImage(null);
    setImageNote(null);
    stickToBottom.current = true;
    try {
      await api.requestImage(character.id, prompt, chatId);
      await reload();
    } catch (e) {
      setImageNote(errorText(t, e));
    }
  };

  // The pictures of the swipe being shown (an imported chat may carry anything: checked).
  const imagesOf = (m: Message) =>
    (m.media ?? []).filter((x) => x && x.kind === 'image' && (x.swipe ?? 0) === m.swipe_id && (typeof x.job === 'string' || (typeof x.url === 'string' && x.url.startsWith('/api/media/'))));

  // A SillyTavern chat file (or our JSON export) becomes a new chat of this character, shown at once.
  const importChat = async (f: File | null) => {
    if (!f || !character) return;
    setError(null);
    try {
      const { chat } = await api.importChat(character.id, f);
      setChats(await api.chats(character.id));
      await loadChat(chat.id);
    } catch (e) {
      setError({ message: format(t.importChatFailed, { file: f.name, error: errorText(t, e) }) });
    }
  };

  const send = () => {
    const text = draft.trim();
    if (!text || streaming || calling) return;
    setDraft('');
    turn('messages', { content: text });
  };

  // Tokens and speed of the reply's shown swipe, with the details on hover.
  const genLine = (m: Message) => {
    const g = m.gen?.[m.swipe_id];
    if (!g || !(g.predicted_tokens > 0)) return null;
    const n = (x: number, digits = 0) => x.toLocaleString(t.locale, { maximumFractionDigits: digits, minimumFractionDigits: digits });
    const tps = g.predicted_ms > 0 ? n((Math.max(0, g.predicted_tokens - 1) * 1000) / g.predicted_ms, 1) : '–';
    const detail = format(t.genDetail, {
      tokens: n(g.predicted_tokens), seconds: n((g.prompt_ms + g.predicted_ms) / 1000, 1), tps, ttft: n(g.prompt_ms / 1000, 2),
      prompt: n(g.prompt_tokens), cached: n(g.cached_tokens),
    });
    return (
      <span className="px-1" title={detail} aria-label={detail} data-testid="message-gen">
        {format(t.genLine, { tokens: n(g.predicted_tokens), tps })}
      </span>
    );
  };

  const lastAssistant = [...messages].reverse().find((m) => m.role === 'assistant');
  const isLast = (m: Message) => messages.length > 0 && messages[messages.length - 1].id === m.id;

  // A new chat with the messages up to this one; it opens at once.
  const branchAt = async (m: Message) => {
    if (!chatId) return;
    setError(null);
    try {
      const current = chats.find((c) => c.id === chatId);
      const { chat } = await api.branchChat(chatId, m.id, format(t.branchTitle, { name: current ? chatName(t, current) : '' }));
      setChats(await api.chats(character!.id));
      await loadChat(chat.id);
    } catch (e) {
      setError({ message: errorText(t, e) });
    }
  };

  const swipe = async (m: Message, dir: -1 | 1) => {
    const next = m.swipe_id + dir;
    if (next < 0) return;
    // Past the last version of the newest reply: a new one. An older message (a greeting with its
    // alternates further up) just stops at its last version — the server regenerates only the newest.
    if (next >= m.swipes.length) return isLast(m) ? turn('regenerate', {}, m) : undefined;
    // Shown at once (a quick second tap then steps on from here, not from the stored version), then stored.
    setMessages((ms) => ms.map((x) => (x.id === m.id ? { ...x, swipe_id: next, content: x.swipes[next] ?? x.content } : x)));
    try {
      const updated = await storing(() => api.editMessage(m.id, { swipe_id: next }));
      setMessages((ms) => ms.map((x) => (x.id === m.id && x.swipe_id === next ? updated : x)));
    } catch (e) {
      setError({ message: errorText(t, e) });
      const list = chatId ? await api.messages(chatId).catch(() => null) : null;
      if (list && shownChatRef.current === chatId) setMessages(list);
    }
  };

  if (!character) {
    return <div className="flex flex-1 items-center justify-center p-6 text-center text-zinc-500">{t.pickCharacter}</div>;
  }

  const shownText = (m: Message) => {
    if (streaming?.targetId === m.id) return streaming.kind === 'continue' ? streaming.base + streaming.text : streaming.text;
    return fillMacros(m.content, character.name, userName);
  };

  return (
    <div className="flex min-h-0 flex-1 flex-col">
      {confirmDialog}
      <div className="flex items-center gap-1 border-b border-zinc-800 px-3 py-2 md:gap-3 md:px-4">
        <Avatar character={character} size={36} />
        <div className="ml-1 min-w-0 flex-1 md:ml-0">
          <div className="truncate font-medium" data-testid="chat-character-name">
            {character.name}
          </div>
          <select
            className="max-w-full truncate bg-transparent text-xs text-zinc-400 outline-none"
            value={chatId ?? ''}
            onChange={(e) => loadChat(e.target.value)}
            aria-label={t.chooseChat}
            data-testid="chat-select"
          >
            {chats.map((c) => (
              <option key={c.id} value={c.id} className="bg-zinc-900">
                {chatName(t, c)}
              </option>
            ))}
          </select>
        </div>
        <button
          className="min-h-10 min-w-10 shrink-0 rounded-lg px-2 py-1 text-sm text-zinc-300 hover:bg-zinc-800"
          aria-label={t.newChat}
          title={t.newChat}
          data-testid="new-chat"
          onClick={async () => {
            const { chat } = await api.createChat(character.id);
            setChats(await api.chats(character.id));
            await loadChat(chat.id);
          }}
        >
          +<span className="hidden md:inline"> {t.newChat}</span>
        </button>
        <button
          className={`flex min-h-10 min-w-10 shrink-0 items-center justify-center rounded-lg px-2 py-1 text-sm hover:bg-zinc-800 ${speak ? 'text-pink-300' : 'text-zinc-500'}`}
          onClick={toggleSpeaker}
          aria-pressed={speak}
          title={speak ? t.speakerOn : t.speakerOff}
          aria-label={speak ? t.speakerOn : t.speakerOff}
          data-testid="speaker-toggle"
        >
          <SpeakerIcon on={speak} />
        </button>
        <button
          className="min-h-10 min-w-10 shrink-0 rounded-lg px-2 py-1 text-sm text-zinc-300 hover:bg-zinc-800"
          onClick={() => setShowMemory(true)}
          disabled={!chatId}
          aria-label={t.memory}
          title={t.memory}
          data-testid="open-memory"
        >
          ◎<span className="hidden md:inline"> {t.memory}</span>
        </button>
        <button
          className="min-h-10 min-w-10 shrink-0 rounded-lg px-2 py-1 text-sm text-zinc-300 hover:bg-zinc-800"
          onClick={onEdit}
          aria-label={t.edit}
          title={t.edit}
          data-testid="edit-character"
        >
          ✎<span className="hidden md:inline"> {t.edit}</span>
        </button>
        <div className="relative shrink-0">
          <button
            className={`min-h-10 min-w-10 rounded-lg px-2 py-1 text-sm hover:bg-zinc-800 ${menuOpen ? 'bg-zinc-800 text-zinc-100' : 'text-zinc-300'}`}
            onClick={() => setMenuOpen((o) => !o)}
            aria-label={t.chatMenu}
            aria-haspopup="menu"
            aria-expanded={menuOpen}
            title={t.chatMenu}
            data-testid="chat-menu"
          >
            ⋯
          </button>
          {menuOpen && (
            <>
              <div className="fixed inset-0 z-10" onClick={() => setMenuOpen(false)} aria-hidden="true" />
              <div
                role="menu"
                className="absolute right-0 top-full z-20 mt-1 flex w-72 max-w-[calc(100vw-1.5rem)] flex-col rounded-xl border border-zinc-700 bg-zinc-900 py-1 text-sm shadow-xl"
                data-testid="chat-menu-items"
              >
                <button
                  role="menuitem"
                  autoFocus
                  className="min-h-10 px-4 py-2 text-left hover:bg-zinc-800"
                  onClick={() => {
                    setMenuOpen(false);
                    setShowChats(true);
                  }}
                  data-testid="open-chat-list"
                >
                  {t.allChats}
                </button>
                <button
                  role="menuitem"
                  className="min-h-10 px-4 py-2 text-left hover:bg-zinc-800"
                  onClick={() => {
                    setMenuOpen(false);
                    chatFileRef.current?.click();
                  }}
                  data-testid="import-chat"
                >
                  {t.importChat}
                </button>
                {chatId && (
                  <a
                    role="menuitem"
                    className="flex min-h-10 items-center px-4 py-2 hover:bg-zinc-800"
                    href={api.chatExportUrl(chatId, 'jsonl')}
                    download
                    onClick={() => setMenuOpen(false)}
                    data-testid="export-chat"
                  >
                    {t.exportChat}
                  </a>
                )}
              </div>
            </>
          )}
          <input
            ref={chatFileRef}
            type="file"
            accept=".jsonl,.json,application/json,application/x-ndjson"
            className="hidden"
            data-testid="import-chat-input"
            onChange={(e) => {
              const f = e.target.files?.[0] ?? null;
              e.target.value = '';  // The same file can be picked again.
              importChat(f);
            }}
          />
        </div>
      </div>

      {usage && usage.tokens.context > 0 && (() => {
        const pct = Math.min(100, Math.round((usage.tokens.total / usage.tokens.context) * 100));
        const label =
          format(t.contextUsage, { used: usage.tokens.total.toLocaleString(t.locale), max: usage.tokens.context.toLocaleString(t.locale), pct: String(pct) }) +
          (usage.summary && usage.summary.covers_messages > 0 ? ` · ${format(t.contextSummary, { n: String(usage.summary.covers_messages) })}` : '') +
          (usage.history_dropped > 0 ? ` · ${format(usage.summary ? t.contextDropped : t.contextDroppedNoSummary, { n: String(usage.history_dropped) })}` : '');
        return (
          <div className="h-1 w-full bg-zinc-800" role="meter" aria-label={label} aria-valuemin={0} aria-valuemax={usage.tokens.context}
            aria-valuenow={usage.tokens.total} title={label} data-testid="context-bar" data-pct={pct}>
            <div className={`h-1 ${pct > 90 ? 'bg-amber-500' : 'bg-pink-600/70'}`} style={{ width: `${pct}%` }} />
          </div>
        );
      })()}
      <div ref={scroller} onScroll={onScroll} className="scroll-thin min-h-0 flex-1 overflow-y-auto px-3 py-4 md:px-6" data-testid="messages">
        {hasOlder && (
          <div className="mb-4 flex justify-center">
            <button className="min-h-[44px] rounded-full bg-zinc-800 px-4 text-sm text-zinc-300 hover:bg-zinc-700" onClick={loadEarlier}
              data-testid="load-earlier">
              {t.loadEarlier}
            </button>
          </div>
        )}
        {messages.map((m) => {
          const mine = m.role === 'user';
          const narration = m.role === 'system';
          const text = shownText(m);
          return (
            <div
              key={m.id}
              className={`group mb-4 flex gap-3 rounded-2xl transition-colors ${mine ? 'flex-row-reverse' : ''} ${narration ? 'justify-center' : ''} ${flashId === m.id ? 'bg-amber-400/15 ring-1 ring-amber-400/60' : ''}`}
              data-testid={`message-${m.role}`}
              data-message-id={m.id}
              data-flash={flashId === m.id ? 'true' : undefined}
              data-hidden={m.hidden ? 'true' : undefined}
            >
              {!mine && !narration && <Avatar character={character} size={32} />}
              <div className={`min-w-0 max-w-[85%] ${mine ? 'items-end' : ''} flex flex-col`}>
                {(m.hidden || narration) && (
                  <div className="mb-1 text-xs text-zinc-500" data-testid="message-label">
                    {narration ? t.narration : ''}
                    {narration && m.hidden ? ' · ' : ''}
                    {m.hidden ? t.hiddenFromModel : ''}
                  </div>
                )}
                <div
                  className={`rounded-2xl px-4 py-2 leading-relaxed ${
                    m.hidden
                      ? `border border-dashed border-zinc-600 bg-transparent text-zinc-300 ${narration ? 'italic' : ''}`
                      : narration
                      ? 'border border-zinc-700 bg-transparent italic text-zinc-300'
                      : mine
                        ? 'rounded-tr-sm bg-pink-900'
                        : 'rounded-tl-sm bg-zinc-800/80'
                  }`}
                >
                  {editingId === m.id ? (
                    <div className="flex flex-col gap-2">
                      <textarea
                        className="min-h-24 w-[min(36rem,70vw)] rounded bg-zinc-900 p-2 text-sm outline-none"
                        value={editText}
                        onChange={(e) => setEditText(e.target.value)}
                        data-testid="edit-text"
                      />
                      <div className="flex justify-end gap-2 text-sm">
                        <button onClick={() => setEditingId(null)}>{t.cancel}</button>
                        <button
                          className="rounded bg-pink-700 text-white px-2 py-0.5"
                          data-testid="edit-save"
                          onClick={async () => {
                            try {
                              const updated = await storing(() => api.editMessage(m.id, { content: editText }));
                              setMessages((ms) => ms.map((x) => (x.id === m.id ? updated : x)));
                              setEditingId(null);
                            } catch (e) {
                              setError({ message: errorText(t, e) });  // The editor stays open with the text.
                            }
                          }}
                        >
                          {t.save}
                        </button>
                      </div>
                    </div>
                  ) : (
                    <div data-testid="message-text">
                      <Markdown text={text} />
                    </div>
                  )}
                  {streaming?.targetId !== m.id &&
                    imagesOf(m).map((x, i) => <MessageImage key={`${x.job ?? x.url}-${i}`} entry={x} onChanged={reload} />)}
                  {streaming?.targetId === m.id &&
                    streaming.images.map((x) => <MessageImage key={x.job} entry={x} onChanged={() => {}} />)}
                  {m.status === 'partial' && streaming?.targetId !== m.id && (() => {
                    const gen = m.gen?.[m.swipe_id];
                    const cut = interrupted.has(m.id) || !!gen?.interrupted;
                    // Talked over in a call: what was not heard stays readable, dimmed; the model sees only what was heard.
                    const unheard = typeof gen?.unheard === 'string' ? gen.unheard.trim() : '';
                    return (
                      <>
                        {unheard && (
                          <div className="mt-1 whitespace-pre-wrap text-sm italic text-zinc-500 line-through decoration-zinc-600/60" title={t.notHeard} data-testid="message-unheard">
                            {fillMacros(unheard, character.name, userName)}
                          </div>
                        )}
                        <div className="mt-1 text-xs text-zinc-500" data-testid={cut ? 'message-interrupted' : undefined}>
                          ({cut ? t.callInterrupted : t.stopped}{unheard ? ` · ${t.notHeard}` : ''})
                        </div>
                      </>
                    );
                  })()}
                </div>
                <div className="mt-1 flex flex-wrap items-center gap-1 text-xs text-zinc-500">
                  <time className="px-1" dateTime={new Date(m.created_at).toISOString()} title={formatDate(t, m.created_at)} data-testid="message-time">
                    {formatTime(t, m.created_at)}
                  </time>
                  {m.role === 'assistant' && streaming?.targetId !== m.id && genLine(m)}
                  {streaming?.targetId !== m.id && (
                    <button
                      className="rounded px-1 hover:text-zinc-200"
                      title={m.hidden ? t.unhideMessage : t.hideMessage}
                      data-testid="toggle-hidden"
                      onClick={async () => {
                        try {
                          const updated = await storing(() => api.editMessage(m.id, { hidden: !m.hidden }));
                          setMessages((ms) => ms.map((x) => (x.id === m.id ? updated : x)));
                        } catch (e) {
                          setError({ message: errorText(t, e) });
                        }
                      }}
                    >
                      {m.hidden ? t.unhideMessage : t.hideMessage}
                    </button>
                  )}
                  {m.role === 'assistant' && m.swipes.length > 1 && (
                    <span className="flex items-center" data-testid="swipes">
                      <button className={`${actionClass} hover:text-zinc-200`} onClick={() => swipe(m, -1)} disabled={!!streaming || m.swipe_id === 0} aria-label={t.previousSwipe} data-testid="swipe-prev">
                        ‹
                      </button>
                      <span data-testid="swipe-counter">
                        {m.swipe_id + 1}/{m.swipes.length}
                      </span>
                      <button className={`${actionClass} hover:text-zinc-200`} onClick={() => swipe(m, 1)}
                        disabled={!!streaming || (!isLast(m) && m.swipe_id + 1 >= m.swipes.length)} aria-label={t.nextSwipe} data-testid="swipe-next">
                        ›
                      </button>
                    </span>
                  )}
                  {m.role === 'assistant' && streaming?.targetId !== m.id && m.content.trim() && (
                    <button
                      className={`${actionClass} hover:text-zinc-200 ${playingId === m.id ? 'text-pink-300' : ''}`}
                      onClick={() => play(m)}
                      aria-label={playingId === m.id ? t.stopPlaying : t.playMessage}
                      title={playingId === m.id ? t.stopPlaying : t.playMessage}
                      data-testid="play-message"
                    >
                      {playingId === m.id ? '■' : '▶'}
                    </button>
                  )}
                  {m.id === lastAssistant?.id && isLast(m) && !streaming && !calling && (
                    <>
                      <button className={`${actionClass} hover:text-zinc-200`} onClick={() => turn('regenerate', {}, m)} data-testid="regenerate">
                        ↻ {t.regenerate}
                      </button>
                      <button className={`${actionClass} hover:text-zinc-200`} onClick={() => turn('continue', {}, m)} data-testid="continue">
                        » {t.continue}
                      </button>
                    </>
                  )}
                  {!streaming && editingId !== m.id && (
                    <span className="flex opacity-100 focus-within:opacity-100 md:opacity-0 md:group-hover:opacity-100">
                      <button
                        className={`${actionClass} hover:text-zinc-200`}
                        onClick={() => {
                          setEditingId(m.id);
                          setEditText(m.content);
                        }}
                        aria-label={t.editMessage}
                        title={t.editMessage}
                        data-testid="edit-message"
                      >
                        ✎
                      </button>
                      <button
                        className={`${actionClass} hover:text-zinc-200`}
                        aria-label={t.branchHere}
                        title={t.branchHere}
                        data-testid="branch-message"
                        onClick={() => branchAt(m)}
                      >
                        ⑂
                      </button>
                      <button
                        className={`${actionClass} hover:text-red-400`}
                        aria-label={t.deleteMessage}
                        title={t.deleteMessage}
                        data-testid="delete-message"
                        onClick={async () => {
                          if (!(await ask(t.confirmDeleteMessage))) return;
                          try {
                            await storing(() => api.deleteMessage(m.id));
                            setMessages((ms) => ms.filter((x) => x.id !== m.id));
                          } catch (e) {
                            setError({ message: errorText(t, e) });
                          }
                        }}
                      >
                        ✕
                      </button>
                    </span>
                  )}
                </div>
              </div>
            </div>
          );
        })}
        {streaming?.kind === 'messages' && (
          <div className="mb-4 flex gap-3" data-testid="streaming">
            <Avatar character={character} size={32} />
            <div className="max-w-[85%] rounded-2xl rounded-tl-sm bg-zinc-800/80 px-4 py-2 leading-relaxed">
              {streaming.text ? <Markdown text={streaming.text} /> : <span className="text-zinc-500">{t.generating}</span>}
              {streaming.images.map((x) => <MessageImage key={x.job} entry={x} onChanged={() => {}} />)}
            </div>
          </div>
        )}
        {voiceNote && (
          <div className="mx-auto mb-4 flex max-w-xl items-start gap-2 rounded-xl border border-amber-900 bg-amber-950/40 px-4 py-2 text-xs text-amber-200" data-testid="voice-note">
            <span className="flex-1">
              <span className="font-medium">{t.voiceProblem}: </span>
              {voiceNote}
            </span>
            <button aria-label={t.close} onClick={() => setVoiceNote(null)}>
              ✕
            </button>
          </div>
        )}
        {imageNote && (
          <div className="mx-auto mb-4 flex max-w-xl items-start gap-2 rounded-xl border border-amber-900 bg-amber-950/40 px-4 py-2 text-xs text-amber-200" data-testid="image-note">
            <span className="flex-1">
              <span className="font-medium">{t.imageFailed}: </span>
              {imageNote}
            </span>
            <button aria-label={t.close} onClick={() => setImageNote(null)}>
              ✕
            </button>
          </div>
        )}
        {error && (
          <div className="mx-auto mb-4 flex max-w-xl items-start gap-3 rounded-xl border border-red-900 bg-red-950/50 px-4 py-3 text-sm" data-testid="chat-error">
            <div className="flex-1">
              <span className="font-medium text-red-300">{t.errorPrefix}: </span>
              {error.message}
            </div>
            {error.retry && (
              <button className="rounded bg-red-800 px-2 py-1 text-white hover:bg-red-700" onClick={error.retry} data-testid="retry">
                {t.retry}
              </button>
            )}
          </div>
        )}
      </div>

      <div className="border-t border-zinc-800 p-2 md:p-3">
        {askImage !== null && (
          <form
            className="mb-2 flex items-center gap-2"
            onSubmit={(e) => {
              e.preventDefault();
              requestImage();
            }}
            data-testid="ask-image"
          >
            <input
              autoFocus
              className="min-w-0 flex-1 rounded-lg bg-zinc-900 px-3 py-2 text-sm outline-none ring-pink-500 focus:ring-1"
              placeholder={format(t.imagePromptPlaceholder, { name: character.name })}
              value={askImage}
              maxLength={2000}
              onChange={(e) => setAskImage(e.target.value)}
              onKeyDown={(e) => e.key === 'Escape' && setAskImage(null)}
              data-testid="ask-image-prompt"
            />
            <button type="submit" className="min-h-10 rounded-lg bg-pink-700 text-white px-3 text-sm font-medium hover:bg-pink-800" data-testid="ask-image-send">
              {t.imageAsk}
            </button>
            <button type="button" className="min-h-10 rounded-lg px-2 text-sm text-zinc-400 hover:bg-zinc-800" onClick={() => setAskImage(null)}>
              {t.cancel}
            </button>
          </form>
        )}
        <div className="flex items-end gap-1 md:gap-2">
          {chatId && (
            <CallButton
              key={chatId}
              chatId={chatId}
              health={health}
              disabled={!!streaming && !calling}
              onStart={() => {
                callChatRef.current = chatId;
                setCalling(true);
                queue.stop();
                setPlayingId(null);
              }}
              onEvent={onCallEvent}
              onEnd={callEnded}
            />
          )}
          {!calling && <MicButton
            disabled={!!streaming}
            prompt={() => sttPrompt(character.name, messages.slice(-2).map((m) => m.content).join(' '))}
            onText={async (text) => {
              // The setting as it is now (it may have changed in the settings drawer meanwhile).
              const autoSend = await api.settings().then((s) => s.stt?.auto_send === true, () => sttAutoSend);
              setSttAutoSend(autoSend);
              if (autoSend && !streaming && !draft.trim()) turn('messages', { content: text });
              else setDraft((d) => (d.trim() ? `${d.trimEnd()} ${text}` : text));
            }}
          />}
          {!calling && <button
            className={`flex min-h-[2.75rem] min-w-[2.75rem] shrink-0 items-center justify-center rounded-xl hover:bg-zinc-800 ${askImage !== null ? 'text-pink-300' : 'text-zinc-400'}`}
            onClick={() => setAskImage(askImage === null ? '' : null)}
            disabled={!chatId}
            aria-label={t.imageSendMe}
            title={t.imageSendMe}
            data-testid="ask-image-open"
          >
            <CameraIcon />
          </button>}
          <textarea
            ref={composerRef}
            className="max-h-48 min-h-[2.75rem] min-w-0 flex-1 resize-none rounded-xl bg-zinc-900 px-3 py-2.5 outline-none ring-pink-500 placeholder:text-sm focus:ring-1"
            rows={1}
            placeholder={format(t.typeMessage, { name: character.name })}
            value={draft}
            onChange={(e) => setDraft(e.target.value)}
            onKeyDown={(e) => {
              if (e.nativeEvent.isComposing) return;
              if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
                // Ctrl+Enter: a new reply in place of the last one.
                e.preventDefault();
                const last = messages[messages.length - 1];
                if (!streaming && last?.role === 'assistant') turn('regenerate', {}, last);
                return;
              }
              if (e.key === 'Enter' && !e.shiftKey) {
                e.preventDefault();
                send();
                return;
              }
              if (draft || streaming || e.shiftKey || e.altKey || e.ctrlKey || e.metaKey) return;
              // With an empty box: ↑ edits your last message, ←/→ step through the last reply's swipes.
              const last = messages[messages.length - 1];
              if (e.key === 'ArrowUp') {
                const mine = [...messages].reverse().find((m) => m.role === 'user');
                if (!mine) return;
                e.preventDefault();
                setEditingId(mine.id);
                setEditText(mine.content);
              } else if ((e.key === 'ArrowLeft' || e.key === 'ArrowRight') && last?.role === 'assistant') {
                e.preventDefault();
                swipe(last, e.key === 'ArrowLeft' ? -1 : 1);
              }
            }}
            aria-keyshortcuts="Control+Enter ArrowUp ArrowLeft ArrowRight"
            data-testid="composer"
          />
          {streaming ? (
            <button
              className="rounded-xl bg-zinc-700 px-4 py-2.5 font-medium hover:bg-zinc-600"
              onClick={() => {
                queue.stop();
                if (chatId) api.stop(chatId);
              }}
              data-testid="stop"
            >
              ■ {t.stop}
            </button>
          ) : (
            <button
              className="flex min-h-[2.75rem] min-w-[2.75rem] shrink-0 items-center justify-center rounded-xl bg-pink-700 font-medium text-white hover:bg-pink-800 disabled:opacity-40 md:px-4"
              onClick={send}
              disabled={!draft.trim() || calling}
              aria-label={t.send}
              data-testid="send"
            >
              <span className="md:hidden" aria-hidden="true"><SendIcon /></span>
              <span className="hidden md:inline">{t.send}</span>
            </button>
          )}
        </div>
        <div className="mt-1 hidden text-xs text-zinc-500 md:block">{t.sendHint}</div>
        <span hidden data-testid="audio-state" data-playing={audio.playing ?? ''} data-pending={audio.pending} data-played={audio.played} />
      </div>
      {showChats && (
        <ChatList
          characterId={character.id}
          characterName={character.name}
          userName={userName}
          currentId={chatId}
          onOpen={(id) => loadChat(id)}
          onChanged={async (deletedId) => {
            const list = await api.chats(character.id);
            setChats(list);
            // The chat shown was deleted: show the newest other one, or start a new one.
            if (deletedId && deletedId === shownChatRef.current) {
              if (list.length) await loadChat(list[0].id);
              else {
                const { chat } = await api.createChat(character.id);
                setChats(await api.chats(character.id));
                await loadChat(chat.id);
              }
            }
          }}
          onClose={() => setShowChats(false)}
        />
      )}
      {showMemory && chatId && (
        <MemoryPanel
          chatId={chatId}
          onClose={() => setShowMemory(false)}
          onJump={jumpTo}
          textOf={(m) => fillMacros(m.content, character.name, userName)}
          nameOf={(m) => (m.role === 'user' ? userName : m.role === 'assistant' ? character.name : t.narration)}
        />
      )}
    </div>
  );
}

function SendIcon() {
  return (
    <svg viewBox="0 0 24 24" width="20" height="20" fill="none" stroke="currentColor" strokeWidth="2" strokeLinecap="round" strokeLinejoin="round">
      <path d="M4 12l16-8-6 16-2.5-6.5z" />
      <path d="M11.5 13.5L20 4" />
    </svg>
  );
}

function CameraIcon() {
  return (
    <svg viewBox="0 0 24 24" width="20" height="20" fill="none" stroke="currentColor" strokeWidth="2" strokeLinecap="round" strokeLinejoin="round" aria-hidden="true">
      <path d="M4 8h3l2-3h6l2 3h3a1 1 0 0 1 1 1v9a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1V9a1 1 0 0 1 1-1z" />
      <circle cx="12" cy="13" r="3.5" />
    </svg>
  );
}

// Per-message actions: 40 px touch targets on a phone, compact from md up.
const actionClass = 'flex min-h-10 min-w-10 items-center justify-center rounded px-1.5 hover:bg-zinc-800 md:min-h-8 md:min-w-8';

// A speaker, with sound waves when on and a cross when off (an SVG: emoji fonts are not everywhere).
function SpeakerIcon({ on }: { on: boolean }) {
  return (
    <svg viewBox="0 0 24 24" width="18" height="18" fill="none" stroke="currentColor" strokeWidth="2" strokeLinecap="round" strokeLinejoin="round" aria-hidden="true">
      <path d="M11 5 6 9H3v6h3l5 4V5z" fill="currentColor" />
      {on ? (
        <>
          <path d="M15.5 8.5a5 5 0 0 1 0 7" />
          <path d="M18.5 5.5a9 9 0 0 1 0 13" />
        </>
      ) : (
        <>
          <path d="m16 9 6 6" />
          <path d="m22 9-6 6" />
        </>
      )}
    </svg>
  );
}
