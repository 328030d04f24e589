import { describe, expect, it } from 'vitest';
import { AudioQueue, replyAudio, type Player } from './audioQueue';

// A fake audio element that records what it was asked to play.
class FakePlayer implements Player {
  src = '';
  preload = '';
  onended: (() => void) | null = null;
  onerror: (() => void) | null = null;
  playing = false;
  log: string[];
  constructor(log: string[]) {
    this.log = log;
  }
  play() {
    this.playing = true;
    this.log.push(`play ${this.src}`);
    return Promise.resolve();
  }
  pause() {
    this.playing = false;
    this.log.push('pause');
  }
  load() {
    this.log.push(`load ${this.src}`);
  }
  end() {
    this.playing = false;
    this.onended?.();
  }
}

function setup() {
  const log: string[] = [];
  const players: FakePlayer[] = [];
  const q = new AudioQueue(() => {
    const p = new FakePlayer(log);
    players.push(p);
    return p;
  });
  return { q, player: players[0], log };
}

describe('AudioQueue', () => {
  it('plays sentences one after another in arrival order, never two at once', () => {
    const { q, player, log } = setup();
    q.enqueue('/a/0.wav');
    q.enqueue('/a/1.wav');
    q.enqueue('/a/2.wav');
    expect(q.state()).toEqual({ playing: '/a/0.wav', pending: 2, played: 0 });
    expect(log.filter((l) => l.startsWith('play'))).toEqual(['play /a/0.wav']);
    // The next one is loaded while the current one plays (no gap).
    expect(log).toContain('load /a/1.wav');
    player.end();
    expect(q.state()).toEqual({ playing: '/a/1.wav', pending: 1, played: 1 });
    player.end();
    player.end();
    expect(q.state()).toEqual({ playing: null, pending: 0, played: 3 });
    expect(log.filter((l) => l.startsWith('play'))).toEqual(['play /a/0.wav', 'play /a/1.wav', 'play /a/2.wav']);
  });

  it('a sentence arriving after the queue ran dry plays at once', () => {
    const { q, player } = setup();
    q.enqueue('/a/0.wav');
    player.end();
    q.enqueue('/a/1.wav');
    expect(q.state().playing).toBe('/a/1.wav');
  });

  it('stop silences the current sentence and drops the rest', () => {
    const { q, player } = setup();
    const states: (string | null)[] = [];
    q.subscribe((s) => states.push(s.playing));
    q.enqueue('/a/0.wav');
    q.enqueue('/a/1.wav');
    q.stop();
    expect(player.playing).toBe(false);
    expect(q.state()).toEqual({ playing: null, pending: 0, played: 0 });
    expect(states[states.length - 1]).toBe(null);
  });

  it('a file that cannot play is skipped', () => {
    const { q, player } = setup();
    q.enqueue('/a/broken.wav');
    q.enqueue('/a/1.wav');
    player.onerror?.();
    expect(q.state().playing).toBe('/a/1.wav');
  });
});

describe('a reply\'s play button', () => {
  const a = (swipe: number, index: number, url = `/api/media/audio/${swipe}-${index}.wav`) => ({ kind: 'audio', swipe, index, url });
  const media = [a(0, 1), a(0, 0), a(1, 0), a(0, 2), { kind: 'image', url: '/api/media/images/x.png' }, a(0, 3, 'https://elsewhere/x.wav')];

  it('plays the shown swipe\'s own sentence files in order', () => {
    expect(replyAudio({ media, swipe_id: 0 })).toEqual(['/api/media/audio/0-0.wav', '/api/media/audio/0-1.wav', '/api/media/audio/0-2.wav']);
    expect(replyAudio({ media, swipe_id: 1 })).toEqual(['/api/media/audio/1-0.wav']);
  });

  it('of a reply talked over in a call, only the sentences that were heard', () => {
    const cut = { media, swipe_id: 0, status: 'partial', gen: [{ unheard: ' And more.', heard_sentences: 2 }] };
    expect(replyAudio(cut)).toEqual(['/api/media/audio/0-0.wav', '/api/media/audio/0-1.wav']);
    // Continued afterwards (complete again): all of it.
    expect(replyAudio({ ...cut, status: 'complete' })).toHaveLength(3);
  });
});
