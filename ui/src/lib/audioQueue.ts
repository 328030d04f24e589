// AudioQueue: plays a reply's sentences back to back — one at a time, in order, without overlap —
// as their audio arrives. The next sentence is loaded while the current one plays, so there is no
// gap. Browsers (phones above all) only allow sound after a user gesture: unlock() is called from
// a click (send, the speaker toggle, a play button) and primes the one element we play through.

export interface QueueState {
  playing: string | null;  // URL now playing.
  pending: number;         // Waiting after it.
  played: number;          // Finished since the page loaded (the e2e test watches this advance).
}

// What the queue needs from an audio element (HTMLAudioElement in the page, a fake in tests).
export interface Player {
  src: string;
  play(): Promise<void>;
  pause(): void;
  load(): void;
  onended: (() => void) | null;
  onerror: (() => void) | null;
  preload: string;
}

// A silent 1-sample WAV: playing it inside a click unlocks the element for later, gesture-less play.
const SILENCE = 'data:audio/wav;base64,UklGRiYAAABXQVZFZm10IBAAAAABAAEAIlYAAESsAAACABAAZGF0YQIAAAAAAA==';

export class AudioQueue {
  private queue: string[] = [];
  private current: string | null = null;
  private played = 0;
  private listeners = new Set<(s: QueueState) => void>();
  private readonly player: Player;
  private readonly preloader: Player;

  constructor(make: () => Player = () => new Audio() as unknown as Player) {
    this.player = make();
    this.preloader = make();
    this.preloader.preload = 'auto';
    this.player.onended = () => this.advance(true);
    // A file that cannot play is skipped, not a stall.
    this.player.onerror = () => this.advance(false);
  }

  // Call from a click handler.
  unlock(): void {
    if (this.current) return;
    this.player.src = SILENCE;
    this.player.play().catch(() => {});
  }

  enqueue(url: string): void {
    this.queue.push(url);
    if (!this.current) this.advance(false);
    else if (this.queue.length === 1) this.prefetch();
  }

  // Stops playback and forgets what was queued (a new message, the stop button).
  stop(): void {
    this.queue = [];
    if (this.current) {
      this.player.pause();
      this.current = null;
      this.emit();
    }
  }

  state(): QueueState {
    return { playing: this.current, pending: this.queue.length, played: this.played };
  }

  subscribe(fn: (s: QueueState) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private advance(finished: boolean): void {
    if (finished && this.current) this.played++;
    const next = this.queue.shift() ?? null;
    this.current = next;
    if (next) {
      this.player.src = next;
      this.player.play().catch(() => this.advance(false));
      this.prefetch();
    }
    this.emit();
  }

  private prefetch(): void {
    if (this.queue.length === 0) return;
    this.preloader.src = this.queue[0];
    this.preloader.load();
  }

  private emit(): void {
    const s = this.state();
    for (const fn of this.listeners) fn(s);
  }
}

// The page's one queue: every chat plays through it, so two replies never talk over each other.
let shared: AudioQueue | null = null;
export function audioQueue(): AudioQueue {
  if (!shared) shared = new AudioQueue();
  return shared;
}

// The stored sentence audio a reply's play button plays, in order: only our own files of the
// swipe shown, and of a reply talked over in a call only the sentences that were heard (what the
// chat still shows as its text).
export function replyAudio(m: {
  media?: { kind?: string; swipe?: number; index?: number; url?: string }[] | null;
  swipe_id: number;
  status?: string;
  gen?: ({ unheard?: string; heard_sentences?: number } | null)[] | null;
}): string[] {
  const g = m.gen?.[m.swipe_id];
  const heard = m.status === 'partial' && typeof g?.unheard === 'string' && typeof g?.heard_sentences === 'number' ? g.heard_sentences : Infinity;
  return (m.media ?? [])
    // Only our own files: an imported chat may carry anything in `media`.
    .filter((x) => x && x.kind === 'audio' && (x.swipe ?? 0) === m.swipe_id && typeof x.url === 'string' && x.url.startsWith('/api/media/'))
    .filter((x) => (x.index ?? 0) < heard)
    .sort((a, b) => (a.index ?? 0) - (b.index ?? 0))
    .map((x) => x.url!);
}
