import { describe, expect, it } from 'vitest';
import { Downsampler, HeardTracker, Player, callReducer, callState, callUrl, downsample, idleCall, level, pcm16le, reconnectDelay, type CallEvent, type CallModel } from './call';

const run = (events: CallEvent[], from: CallModel = idleCall) => events.reduce(callReducer, from);

describe('downsampling to 16 kHz PCM16', () => {
  it('48 kHz: three samples become one, their average', () => {
    const out = downsample(new Float32Array([0.5, 0.5, 0.5, -1, -1, -1, 0, 0.3, 0.6]), 48000);
    expect(Array.from(out)).toEqual([Math.round(0.5 * 0x7fff), -0x8000, Math.round(0.3 * 0x7fff)]);
  });

  it('clips beyond full scale', () => {
    expect(Array.from(downsample(new Float32Array([2, -3]), 16000))).toEqual([0x7fff, -0x8000]);
  });

  it('chunk borders change nothing (state carries over), also at 44.1 kHz', () => {
    const input = new Float32Array(44100).map((_, i) => Math.sin((2 * Math.PI * 440 * i) / 44100) * 0.8);
    const whole = downsample(input, 44100);
    const d = new Downsampler(44100);
    const parts: number[] = [];
    for (let i = 0; i < input.length; i += 128) parts.push(...d.push(input.subarray(i, i + 128)));
    expect(Math.abs(whole.length - 16000)).toBeLessThanOrEqual(1);
    expect(parts.length).toBe(whole.length);
    expect(parts).toEqual(Array.from(whole));
  });

  it('a 1 s block at 48 kHz gives 16000 samples; 40 ms blocks give 640 each', () => {
    const d = new Downsampler(48000);
    expect(d.push(new Float32Array(1920)).length).toBe(640);
    expect(downsample(new Float32Array(48000), 48000).length).toBe(16000);
  });

  it('bytes are little-endian', () => {
    const b = new Uint8Array(pcm16le(new Int16Array([0x1234, -2])));
    expect(Array.from(b)).toEqual([0x34, 0x12, 0xfe, 0xff]);
  });

  it('level: silence 0, full scale 1', () => {
    expect(level(new Float32Array(100))).toBe(0);
    expect(level(new Float32Array(100).fill(1))).toBeCloseTo(1);
  });
});

describe('the call state machine', () => {
  const open = run([{ type: 'dial' }, { type: 'call', seq: 0, call_id: 'c1', resumed: false }]);

  it('dial → connecting, call → listening', () => {
    expect(callState(run([{ type: 'dial' }]))).toBe('connecting');
    expect(callState(open)).toBe('listening');
    expect(open.callId).toBe('c1');
  });

  it('a turn: hearing, thinking, speaking, listening', () => {
    const steps: [CallEvent, string][] = [
      [{ type: 'speech_start', seq: 1, at_ms: 100, interrupted: false }, 'hearing'],
      [{ type: 'utterance_end', seq: 2 }, 'thinking'],
      [{ type: 'transcript', seq: 3, text: 'hallo' }, 'thinking'],
      [{ type: 'user', seq: 4, message: {} }, 'thinking'],
      [{ type: 'token', seq: 5, text: 'Hi' }, 'thinking'],
      [{ type: 'audio', seq: 6, index: 0 }, 'thinking'],
      [{ type: 'playing', playing: true }, 'speaking'],
      [{ type: 'done', seq: 7, interrupted: false }, 'speaking'],
      [{ type: 'playing', playing: false }, 'listening'],
    ];
    let m = open;
    for (const [e, want] of steps) {
      m = callReducer(m, e);
      expect(callState(m), e.type).toBe(want);
    }
    expect(m.seq).toBe(7);
  });

  it('nothing recognized: back to listening', () => {
    expect(callState(run([{ type: 'speech_start', seq: 1 }, { type: 'utterance_end', seq: 2 }, { type: 'transcript', seq: 3, text: '' }], open))).toBe('listening');
  });

  it('speaking over the reply: hearing at once, playback off', () => {
    const m = run([{ type: 'user', seq: 1 }, { type: 'playing', playing: true }, { type: 'speech_start', seq: 2, interrupted: true }], open);
    expect(callState(m)).toBe('hearing');
    expect(m.playing).toBe(false);
  });

  it('seq: an audio event counts once its WAV frame is here; replays never go back', () => {
    let m = run([{ type: 'token', seq: 4 }, { type: 'audio', seq: 5 }], open);
    expect(m.seq).toBe(4);
    m = callReducer(m, { type: 'audio_data', seq: 5 });
    expect(m.seq).toBe(5);
    m = run([{ type: 'call', seq: 0, call_id: 'c1', resumed: true }, { type: 'token', seq: 3 }], m);
    expect(m.seq).toBe(5);
  });

  it('a broken connection: reconnecting, keeps call id and seq; resumed → listening; ended → idle', () => {
    let m = run([{ type: 'token', seq: 3 }, { type: 'lost' }], open);
    expect(callState(m)).toBe('reconnecting');
    expect([m.callId, m.seq]).toEqual(['c1', 3]);
    m = callReducer(m, { type: 'call', seq: 0, call_id: 'c1', resumed: true });
    expect(callState(m)).toBe('thinking');  // The reply was still being written.
    m = callReducer(m, { type: 'ended', seq: 9, reason: 'hangup' });
    expect(callState(m)).toBe('idle');
    expect(m.callId).toBe(null);
  });

  it('an error ends the turn, not the call', () => {
    expect(callState(run([{ type: 'user', seq: 1 }, { type: 'error', seq: 2, error: { code: 'internal' } }], open))).toBe('listening');
  });
});

describe('connecting', () => {
  it('ws:// or wss:// as the page, resume query', () => {
    expect(callUrl({ protocol: 'http:', host: 'localhost:8080' }, 'abc')).toBe('ws://localhost:8080/api/chats/abc/call');
    expect(callUrl({ protocol: 'https:', host: '192.168.1.5:8443' }, 'abc', { callId: 'k1', seq: 12 })).toBe(
      'wss://192.168.1.5:8443/api/chats/abc/call?resume=k1&after=12');
  });

  it('backoff 0.5 s, 1 s, 2 s, then at most 4 s: a dozen tries fit the 20 s the server keeps a call', () => {
    expect([0, 1, 2, 3, 4, 5].map(reconnectDelay)).toEqual([500, 1000, 2000, 4000, 4000, 4000]);
  });
});

// A fake AudioContext: decodes "WAVs" whose first byte is the length in seconds; records starts.
class FakeContext {
  currentTime = 0;
  started: { at: number; seconds: number; node: FakeSource }[] = [];
  destination = {};
  decodeAudioData(wav: ArrayBuffer) {
    const seconds = new Uint8Array(wav)[0];
    // The second sentence decodes faster than the first: order must still hold.
    return new Promise<{ duration: number }>((r) => setTimeout(() => r({ duration: seconds }), seconds === 1 ? 5 : 1));
  }
  createBufferSource() {
    return new FakeSource(this);
  }
}
class FakeSource {
  buffer: { duration: number } | null = null;
  onended: (() => void) | null = null;
  stopped = false;
  constructor(private ctx: FakeContext) {}
  connect() {}
  start(at: number) {
    this.ctx.started.push({ at, seconds: this.buffer!.duration, node: this });
  }
  stop() {
    this.stopped = true;
  }
}
const wav = (seconds: number) => new Uint8Array([seconds]).buffer;
const settle = () => new Promise((r) => setTimeout(r, 20));

describe('the call player', () => {
  it('plays sentences in order, each starting where the one before ends', async () => {
    const ctx = new FakeContext();
    const p = new Player(ctx as unknown as AudioContext, () => {});
    p.enqueue(wav(1));
    p.enqueue(wav(2));
    p.enqueue(wav(3));
    await settle();
    expect(ctx.started.map((s) => s.seconds)).toEqual([1, 2, 3]);
    const [a, b, c] = ctx.started;
    expect(b.at).toBeCloseTo(a.at + 1);
    expect(c.at).toBeCloseTo(b.at + 2);
    expect(p.playing).toBe(true);
    a.node.onended?.();
    expect(p.played).toBe(1);
  });

  it('stop: silent at once, queued and still-decoding sentences dropped, not counted as played', async () => {
    const ctx = new FakeContext();
    let changes = 0;
    const p = new Player(ctx as unknown as AudioContext, () => changes++);
    p.enqueue(wav(2));
    await settle();
    p.enqueue(wav(1));  // Still decoding when stop comes.
    p.stop();
    await settle();
    expect(ctx.started.length).toBe(1);
    expect(ctx.started[0].node.stopped).toBe(true);
    expect(p.playing).toBe(false);
    expect(p.played).toBe(0);
    expect(changes).toBeGreaterThan(0);
    // After a stop the next reply starts now, not after what was dropped.
    ctx.currentTime = 0.5;
    p.enqueue(wav(2));
    await settle();
    expect(ctx.started[1].at).toBeCloseTo(0.51);
  });
});

describe('talking over a reply', () => {
  it('stop says up to which sentence of the reply played (the one cut off included), by the sentences\' numbers', async () => {
    const ctx = new FakeContext();
    const p = new Player(ctx as unknown as AudioContext, () => {});
    p.enqueue(wav(1));  // An earlier reply, heard to its end.
    await settle();
    ctx.started[0].node.onended?.();
    p.mark();  // The next reply: sentences 0, 2, 3 (1 could not be spoken).
    p.enqueue(wav(2), 0);
    p.enqueue(wav(2), 2);
    p.enqueue(wav(2), 3);
    await settle();
    const [a, b] = ctx.started.slice(1);
    a.node.onended?.();  // The first sentence played to its end …
    ctx.currentTime = b.at + 0.5;  // … sentence 2 is half through, sentence 3 waits.
    expect(p.stop()).toEqual({ cut: true, heard: 3 });
    // Nothing playing or queued any more: nothing cut, and the count stays.
    expect(p.stop()).toEqual({ cut: false, heard: 3 });
  });

  it('a sentence still decoding counts as cut, not heard', async () => {
    const ctx = new FakeContext();
    const p = new Player(ctx as unknown as AudioContext, () => {});
    p.mark();
    p.enqueue(wav(1));
    expect(p.stop()).toEqual({ cut: true, heard: 0 });
  });

  it('the server is told once per reply: with its id when complete, without while it is written', () => {
    const t = new HeardTracker();
    t.newReply();
    t.done('7');
    expect(t.talkedOver({ cut: true, heard: 2 }, false)).toEqual({ type: 'heard', message_id: '7', sentences: 2 });
    // Speaking again after playback stopped: nothing more to say.
    expect(t.talkedOver({ cut: false, heard: 2 }, false)).toBeNull();
    // The next reply is talked over while it is written: no id yet (the server cuts it once stored);
    // a second speech_start before its done says nothing more.
    t.newReply();
    expect(t.talkedOver({ cut: true, heard: 1 }, true)).toEqual({ type: 'heard', sentences: 1 });
    expect(t.talkedOver({ cut: false, heard: 1 }, true)).toBeNull();
    t.done('9');
    // Talked over before anything played while written: still told (0 heard).
    t.newReply();
    expect(t.talkedOver({ cut: false, heard: 0 }, true)).toEqual({ type: 'heard', sentences: 0 });
    // A reply heard to its end, and a turn that failed (no reply), say nothing.
    t.newReply();
    t.done('11');
    expect(t.talkedOver({ cut: false, heard: 4 }, false)).toBeNull();
    t.newReply();
    t.done(null);
    expect(t.talkedOver({ cut: true, heard: 1 }, false)).toBeNull();
  });
});
