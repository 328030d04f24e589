// A hands-free voice call (WebSocket /api/chats/{id}/call, docs: the call protocol): the microphone
// goes to the server as 16 kHz mono PCM16 every ~40 ms; the server finds speech, answers, and sends
// each spoken sentence as a WAV, which plays here in order without gaps. When the person starts
// speaking, playback stops at once. A connection that breaks is resumed (?resume=&after=) for up to
// the 20 s the server keeps the call. The pure parts (downsampling, the state machine) are exported
// for the tests.

export type CallState = 'idle' | 'connecting' | 'listening' | 'hearing' | 'thinking' | 'speaking' | 'reconnecting';

// A server event ({type, seq, ...}) or one of the client's own: dial, lost, closed, playing
// {playing}, audio_data {seq} (an audio event's WAV frame arrived).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type CallEvent = { type: string; seq?: number; [key: string]: any };

export interface CallModel {
  conn: 'idle' | 'connecting' | 'open' | 'reconnecting';
  callId: string | null;
  seq: number;        // The last event fully received (an audio event counts once its WAV is here).
  hearing: boolean;   // Between speech_start and utterance_end.
  waiting: boolean;   // Utterance ended, no transcript yet.
  writing: boolean;   // A reply is being written.
  playing: boolean;   // Sentences are playing.
}

export const idleCall: CallModel = { conn: 'idle', callId: null, seq: 0, hearing: false, waiting: false, writing: false, playing: false };

export function callReducer(m: CallModel, e: CallEvent): CallModel {
  // Replayed events after a resume keep the highest seq; audio waits for its WAV frame.
  const seq = e.type !== 'audio' && e.type !== 'call' && typeof e.seq === 'number' && e.seq > m.seq ? e.seq : m.seq;
  const n = { ...m, seq };
  switch (e.type) {
    case 'dial':
      return { ...idleCall, conn: 'connecting', callId: m.callId, seq: m.seq };
    case 'lost':
      return { ...n, conn: m.conn === 'idle' ? 'idle' : 'reconnecting', hearing: false };
    case 'closed':
    case 'ended':
      return idleCall;
    case 'call':
      return { ...n, conn: 'open', callId: e.call_id ?? m.callId };
    case 'speech_start':
      return { ...n, hearing: true, playing: false };
    case 'utterance_end':
      return { ...n, hearing: false, waiting: true };
    case 'transcript':
      return { ...n, waiting: false, writing: !!e.text };
    case 'user':
    case 'token':
      return { ...n, waiting: false, writing: true };
    case 'done':
    case 'error':
      return { ...n, waiting: false, writing: false };
    case 'playing':
      return { ...n, playing: !!e.playing };
    case 'audio_data':
      return { ...n, seq: typeof e.seq === 'number' && e.seq > m.seq ? e.seq : m.seq };
    default:
      return n;
  }
}

// What the call button shows.
export function callState(m: CallModel): CallState {
  if (m.conn !== 'open') return m.conn === 'idle' ? 'idle' : m.conn;
  if (m.hearing) return 'hearing';
  if (m.playing) return 'speaking';
  if (m.waiting || m.writing) return 'thinking';
  return 'listening';
}

// Waits before reconnect attempt n (0, 1, ...): 0.5 s, 1 s, 2 s, 4 s, then every 4 s.
export function reconnectDelay(attempt: number): number {
  return Math.min(4000, 500 * 2 ** attempt);
}

export function callUrl(loc: { protocol: string; host: string }, chatId: string, resume?: { callId: string; seq: number } | null): string {
  const q = resume ? `?resume=${encodeURIComponent(resume.callId)}&after=${resume.seq}` : '';
  return `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}/api/chats/${encodeURIComponent(chatId)}/call${q}`;
}

// Float samples at any rate to 16-bit samples at `outRate`, chunk by chunk (state carries over, so
// chunk borders leave no clicks). Each output sample averages the input it covers (a box filter
// against aliasing, enough for speech recognition).
export class Downsampler {
  private rest = new Float32Array(0);
  private offset = 0;  // Input samples before rest[0].
  private count = 0;   // Output samples made so far.
  private readonly ratio: number;

  constructor(inRate: number, outRate = 16000) {
    this.ratio = inRate / outRate;
  }

  push(input: Float32Array): Int16Array {
    const buf = new Float32Array(this.rest.length + input.length);
    buf.set(this.rest);
    buf.set(input, this.rest.length);
    const end = this.offset + buf.length;
    const out: number[] = [];
    // Output sample i covers input [i*ratio, (i+1)*ratio): computed, not summed up, so every
    // chunking gives the same samples.
    for (;;) {
      const a = Math.floor(this.count * this.ratio);
      const b = Math.max(a + 1, Math.floor((this.count + 1) * this.ratio));
      if (b > end) break;
      let sum = 0;
      for (let k = a; k < b; k++) sum += buf[k - this.offset];
      const v = Math.max(-1, Math.min(1, sum / (b - a)));
      out.push(Math.round(v < 0 ? v * 0x8000 : v * 0x7fff));
      this.count++;
    }
    const keep = Math.min(end, Math.floor(this.count * this.ratio)) - this.offset;
    this.rest = buf.slice(keep);
    this.offset += keep;
    return Int16Array.from(out);
  }
}

export function downsample(input: Float32Array, inRate: number, outRate = 16000): Int16Array {
  return new Downsampler(inRate, outRate).push(input);
}

// 16-bit samples as little-endian bytes (what the server reads, whatever this machine's order).
export function pcm16le(samples: Int16Array): ArrayBuffer {
  const view = new DataView(new ArrayBuffer(samples.length * 2));
  samples.forEach((s, i) => view.setInt16(i * 2, s, true));
  return view.buffer;
}

// Input level 0..1 (RMS on a dB scale: -60 dBFS → 0, 0 dBFS → 1), as the mic button's meter.
export function level(f: Float32Array): number {
  let sum = 0;
  for (const v of f) sum += v * v;
  const db = 20 * Math.log10(Math.sqrt(sum / Math.max(1, f.length)) + 1e-9);
  return Math.max(0, Math.min(1, (db + 60) / 60));
}

// The call a tab had, per chat, so a reloaded tab can resume it.
const storeKey = (chatId: string) => `mc.call.${chatId}`;
export function storedCall(chatId: string): { callId: string; seq: number } | null {
  try {
    const v = JSON.parse(sessionStorage.getItem(storeKey(chatId)) ?? 'null');
    return v && typeof v.callId === 'string' ? { callId: v.callId, seq: Number(v.seq) || 0 } : null;
  } catch {
    return null;
  }
}

export interface HeardMessage {
  type: 'heard';
  message_id?: string;  // Absent: the reply being written (the server cuts it once it is stored).
  sentences: number;
}

// When the person talks over a reply (speech_start), what the server is told: how many of the
// reply's sentences they heard, so it keeps that much. Once per reply, unless more of it played
// since (a later count is never smaller: the player counts per reply).
export class HeardTracker {
  private replyId: string | null = null;  // The latest reply whose done event came.
  private told = false;                   // The server was told about the current reply.

  // A new turn began (its user event): what follows is a new reply.
  newReply(): void {
    this.replyId = null;
    this.told = false;
  }

  done(messageId: string | null): void {
    this.replyId = messageId;
  }

  // Playback stopped (Player.stop()'s answer) while the reply was or was not still being written.
  talkedOver(stopped: { cut: boolean; heard: number }, writing: boolean): HeardMessage | null {
    if (!stopped.cut && (!writing || this.told)) return null;  // Nothing cut (heard to its end, or told already).
    if (!writing && !this.replyId) return null;  // No reply (the turn failed): nothing to cut.
    this.told = true;
    return writing ? { type: 'heard', sentences: stopped.heard } : { type: 'heard', message_id: this.replyId!, sentences: stopped.heard };
  }
}

// Plays WAVs through Web Audio one after another, each scheduled at the previous one's end (no gap);
// stop() silences it at once and drops what is queued, decodes still running included.
export class Player {
  private chain: Promise<void> = Promise.resolve();
  private gen = 0;
  private next = 0;
  private sources = new Set<AudioBufferSourceNode>();
  private startsAt = new Map<AudioBufferSourceNode, { at: number; index: number }>();
  private decoding = 0;  // WAVs queued and not yet scheduled.
  private queued = 0;    // WAVs of the current reply so far (the index of one enqueued without its own).
  private heardUpTo = 0;  // Sentences of the current reply heard: the highest index that began to play, + 1.
  played = 0;

  constructor(private ctx: AudioContext, private onChange: () => void) {}

  get playing(): boolean {
    return this.sources.size > 0;
  }

  // A new reply begins: stop() counts its sentences from here.
  mark(): void {
    this.queued = 0;
    this.heardUpTo = 0;
  }

  // `index`: the sentence's number in its reply (the audio event's), so a sentence the server could
  // not speak does not shift the count.
  enqueue(wav: ArrayBuffer, index = this.queued): void {
    this.queued = Math.max(this.queued, index + 1);
    const gen = this.gen;
    this.decoding++;
    const decoding = this.ctx.decodeAudioData(wav).catch(() => null);  // Decodes while the one before plays.
    this.chain = this.chain.then(async () => {
      const buf = await decoding;
      if (gen !== this.gen) return;
      this.decoding--;
      if (!buf) return;
      const src = this.ctx.createBufferSource();
      src.buffer = buf;
      src.connect(this.ctx.destination);
      const at = Math.max(this.ctx.currentTime + 0.01, this.next);
      src.start(at);
      this.next = at + buf.duration;
      this.sources.add(src);
      this.startsAt.set(src, { at, index });
      src.onended = () => {
        this.heardUpTo = Math.max(this.heardUpTo, index + 1);
        this.startsAt.delete(src);
        if (!this.sources.delete(src)) return;
        this.played++;
        this.onChange();
      };
      this.onChange();
    });
  }

  // Now, and forget what was queued. Says whether anything was playing or waiting to (`cut`), and
  // how many sentences of the current reply had begun to play (`heard`, the one cut off included).
  stop(): { cut: boolean; heard: number } {
    const now = this.ctx.currentTime;
    for (const s of this.sources) {
      const started = this.startsAt.get(s);
      if (started && started.at <= now) this.heardUpTo = Math.max(this.heardUpTo, started.index + 1);
    }
    const result = { cut: this.sources.size > 0 || this.decoding > 0, heard: this.heardUpTo };
    this.decoding = 0;
    this.startsAt.clear();
    this.gen++;
    for (const s of this.sources) {
      s.onended = null;
      try {
        s.stop();
      } catch {
        // Not started yet.
      }
    }
    this.sources.clear();
    this.next = 0;
    this.onChange();
    return result;
  }
}

// Collects the microphone in ~40 ms blocks inside the audio thread.
const WORKLET = `registerProcessor('mc-call-tap', class extends AudioWorkletProcessor {
  constructor() { super(); this.b = new Float32Array(Math.round(sampleRate * 0.04)); this.n = 0; }
  process(inputs) {
    const c = inputs[0] && inputs[0][0];
    if (c) for (let i = 0; i < c.length; i++) {
      this.b[this.n++] = c[i];
      if (this.n === this.b.length) { this.port.postMessage(this.b.slice(0)); this.n = 0; }
    }
    return true;
  }
});`;

export interface CallCallbacks {
  onState: (s: CallState) => void;
  onEvent: (e: CallEvent) => void;   // Every server event, as it arrives.
  onLevel: (level: number) => void;
  onPlayed: (sentences: number) => void;
  // The call is over: the `ended` reason, or hangup | lost (reconnecting ran out) | refused (the
  // first connection never opened) | microphone (no access; `detail` says why).
  onEnd: (reason: string, detail?: string) => void;
}

const KEEP_MS = 20000;  // How long the server keeps a dropped call, until its `call` event says (reconnect_s).

export class CallClient {
  echoCancellation: boolean | null = null;  // Known once the microphone is open.
  private keepMs = KEEP_MS;
  private model = idleCall;
  private ws: WebSocket | null = null;
  private ctx: AudioContext | null = null;
  private player: Player | null = null;
  private stream: MediaStream | null = null;
  private down: Downsampler | null = null;
  private over = false;
  private lostAt: number | null = null;
  private attempt = 0;
  private timer: number | null = null;
  private audioSeq: number | null = null;  // An audio event whose WAV frame comes next.
  private heard = new HeardTracker();
  private talkedOver = false;  // The person spoke over the current reply: the rest of its audio is not played.
  private audioIndex: number | undefined;  // The sentence number of the WAV frame that comes next.
  private resumeOnly = false;

  constructor(private chatId: string, private cb: CallCallbacks) {}

  // Call from a click (the audio context may only start on a gesture). `resume`: the call a
  // reloaded tab had; when it is gone the client ends quietly (reason "refused").
  async start(resume?: { callId: string; seq: number } | null): Promise<void> {
    this.ctx = new AudioContext();
    // Started without a tap (resuming after a reload) the browser may hold the audio back until one.
    if (this.ctx.state === 'suspended') {
      const ctx = this.ctx;
      ctx.resume().catch(() => {});
      window.addEventListener('pointerdown', () => ctx.resume().catch(() => {}), { once: true });
    }
    this.player = new Player(this.ctx, () => {
      this.dispatch({ type: 'playing', playing: this.player!.playing });
      this.cb.onPlayed(this.player!.played);
    });
    this.dispatch({ type: 'dial' });
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 },
      });
      if (this.over) return this.release();
      // What the browser granted: without echo cancellation the character's own voice from the
      // speakers would count as the person speaking and stop every reply.
      this.echoCancellation = this.stream.getAudioTracks()[0]?.getSettings().echoCancellation === true;
      await this.tapMicrophone(this.ctx, this.stream);
    } catch (e) {
      this.finish('microphone', e instanceof Error ? e.message : String(e));
      return;
    }
    if (this.over) return;
    if (resume) {
      this.model = { ...this.model, callId: resume.callId, seq: resume.seq };
      this.resumeOnly = true;
    }
    window.addEventListener('pagehide', this.onPageHide);
    this.connect(!!resume);
  }

  hangup(): void {
    if (this.over) return;
    try {
      if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ type: 'hangup' }));
      this.ws?.close(1000);
    } catch {
      // Already closing.
    }
    this.finish('hangup');
  }

  // The tab goes away: a close frame ends the call at once (the browser itself sends 1001 when a
  // page unloads; script may only send 1000 or 3000-4999). While reconnecting there is no open
  // socket to close: the call stays on the server, and the reloaded tab resumes it.
  private onPageHide = () => this.finish('closed', undefined, this.ws?.readyState !== WebSocket.OPEN);

  private async tapMicrophone(ctx: AudioContext, stream: MediaStream): Promise<void> {
    this.down = new Downsampler(ctx.sampleRate);
    const source = ctx.createMediaStreamSource(stream);
    const onBlock = (f: Float32Array) => {
      this.cb.onLevel(level(f));
      const pcm = this.down!.push(f);
      // Only while connected: what is said during a reconnect is dropped (the server ends calls
      // that send more than 2 s ahead of real time).
      if (this.ws?.readyState === WebSocket.OPEN && this.model.conn === 'open' && pcm.length) this.ws.send(pcm16le(pcm));
    };
    if (ctx.audioWorklet && typeof AudioWorkletNode !== 'undefined') {
      const url = URL.createObjectURL(new Blob([WORKLET], { type: 'application/javascript' }));
      try {
        await ctx.audioWorklet.addModule(url);
      } finally {
        URL.revokeObjectURL(url);
      }
      const node = new AudioWorkletNode(ctx, 'mc-call-tap');
      node.port.onmessage = (e) => onBlock(e.data as Float32Array);
      source.connect(node);
      node.connect(ctx.destination);  // Silent; keeps the node running.
    } else {
      const node = ctx.createScriptProcessor(2048, 1, 1);
      node.onaudioprocess = (e) => onBlock(new Float32Array(e.inputBuffer.getChannelData(0)));
      source.connect(node);
      node.connect(ctx.destination);
    }
  }

  private dispatch(e: CallEvent): void {
    const before = this.model;
    this.model = callReducer(this.model, e);
    if (callState(before) !== callState(this.model) || e.type === 'dial') this.cb.onState(callState(this.model));
    if (this.model.callId && this.model.seq !== before.seq) this.save();
  }

  private sendHeard(m: HeardMessage | null): void {
    if (m && this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(m));
  }

  private save(): void {
    try {
      sessionStorage.setItem(storeKey(this.chatId), JSON.stringify({ callId: this.model.callId, seq: this.model.seq }));
    } catch {
      // Storage full or off: no resume after a reload.
    }
  }

  private connect(resume: boolean): void {
    const ws = new WebSocket(callUrl(location, this.chatId, resume && this.model.callId ? { callId: this.model.callId, seq: this.model.seq } : null));
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    this.audioSeq = null;
    let opened = false;
    ws.onmessage = (m) => {
      if (this.ws !== ws || this.over) return;
      if (typeof m.data !== 'string') {
        if (this.audioSeq === null) return;
        if (!this.talkedOver) this.player!.enqueue(m.data as ArrayBuffer, this.audioIndex);
        this.dispatch({ type: 'audio_data', seq: this.audioSeq });
        this.audioSeq = null;
        return;
      }
      let e: CallEvent;
      try {
        e = JSON.parse(m.data);
      } catch {
        return;
      }
      if (e.type === 'call') {
        opened = true;
        if (typeof e.reconnect_s === 'number') this.keepMs = e.reconnect_s * 1000;
        this.lostAt = null;
        this.attempt = 0;
        this.resumeOnly = false;
      } else if (e.type === 'speech_start') {
        // Talked over: the server learns how much of the reply was heard, and keeps that much; what
        // of it still arrives is not played.
        const stopped = this.player!.stop();
        if (stopped.cut || this.model.writing) this.talkedOver = true;
        this.sendHeard(this.heard.talkedOver(stopped, this.model.writing));
      } else if (e.type === 'user') {
        this.player!.mark();
        this.heard.newReply();
        this.talkedOver = false;
      } else if (e.type === 'done') {
        this.heard.done(e.message?.id ?? null);
      } else if (e.type === 'audio') {
        this.audioIndex = typeof e.index === 'number' ? e.index : undefined;
        this.audioSeq = e.seq ?? null;
      }
      this.dispatch(e);
      this.cb.onEvent(e);
      if (e.type === 'call') this.save();
      if (e.type === 'ended') this.finish(String(e.reason ?? 'closed'));
    };
    ws.onclose = (c) => {
      if (this.ws !== ws || this.over) return;
      this.ws = null;
      if (!opened && (this.resumeOnly || !this.model.callId)) return this.finish('refused');
      // The server ended this connection and the call on purpose (another connection has the call,
      // too fast, too many bad messages: 1008; a message too big: 1009).
      if (c.code === 1008 || c.code === 1009) return this.finish(/active/.test(c.reason) ? 'call_active' : /fast/.test(c.reason) ? 'too_fast' : 'error');
      this.dispatch({ type: 'lost' });
      this.lostAt ??= Date.now();
      const wait = reconnectDelay(this.attempt++);
      if (Date.now() + wait - this.lostAt > this.keepMs) return this.finish('lost');
      this.timer = window.setTimeout(() => this.connect(true), wait);
    };
  }

  private finish(reason: string, detail?: string, keepStored = false): void {
    if (this.over) return;
    this.over = true;
    this.release();
    try {
      if (!keepStored) sessionStorage.removeItem(storeKey(this.chatId));
    } catch {
      // Nothing stored.
    }
    this.dispatch({ type: 'closed' });
    this.cb.onLevel(0);
    this.cb.onEnd(reason, detail);
  }

  private release(): void {
    if (this.timer !== null) window.clearTimeout(this.timer);
    this.timer = null;
    window.removeEventListener('pagehide', this.onPageHide);
    const ws = this.ws;
    this.ws = null;
    if (ws && ws.readyState <= WebSocket.OPEN) {
      try {
        ws.close(1000);
      } catch {
        // Closing.
      }
    }
    this.player?.stop();
    this.stream?.getTracks().forEach((t) => t.stop());
    this.stream = null;
    this.ctx?.close().catch(() => {});
    this.ctx = null;
  }
}
