// Records the microphone with MediaRecorder (Opus in WebM where the browser can, as Chrome and
// Firefox do) and reports the input level (0..1) about 30 times a second for a meter.
// The browser only allows the microphone on https:// pages and on localhost.

export type Level = (level: number) => void;

export function microphoneAvailable(): boolean {
  return typeof window !== 'undefined' && window.isSecureContext && !!navigator.mediaDevices?.getUserMedia &&
    typeof MediaRecorder !== 'undefined';
}

function pickType(): string | undefined {
  for (const t of ['audio/webm;codecs=opus', 'audio/ogg;codecs=opus', 'audio/webm']) {
    if (MediaRecorder.isTypeSupported?.(t)) return t;
  }
  return undefined;
}

export class Recorder {
  private stream: MediaStream | null = null;
  private recorder: MediaRecorder | null = null;
  private chunks: Blob[] = [];
  private ctx: AudioContext | null = null;
  private timer: number | null = null;

  async start(onLevel: Level): Promise<void> {
    this.stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true } });
    const type = pickType();
    this.recorder = new MediaRecorder(this.stream, type ? { mimeType: type } : undefined);
    this.chunks = [];
    this.recorder.ondataavailable = (e) => {
      if (e.data.size > 0) this.chunks.push(e.data);
    };
    this.recorder.start(250);
    try {
      this.ctx = new AudioContext();
      const source = this.ctx.createMediaStreamSource(this.stream);
      const analyser = this.ctx.createAnalyser();
      analyser.fftSize = 1024;
      source.connect(analyser);
      const buf = new Float32Array(analyser.fftSize);
      this.timer = window.setInterval(() => {
        analyser.getFloatTimeDomainData(buf);
        let sum = 0;
        for (const v of buf) sum += v * v;
        // RMS on a rough dB scale: -60 dBFS → 0, 0 dBFS → 1.
        const db = 20 * Math.log10(Math.sqrt(sum / buf.length) + 1e-9);
        onLevel(Math.max(0, Math.min(1, (db + 60) / 60)));
      }, 33);
    } catch {
      // No meter without Web Audio; recording still works.
    }
  }

  // Stops and returns the recording.
  stop(): Promise<Blob> {
    const rec = this.recorder;
    if (!rec) return Promise.resolve(new Blob());
    return new Promise((resolve) => {
      rec.onstop = () => {
        const blob = new Blob(this.chunks, { type: rec.mimeType || 'audio/webm' });
        this.release();
        resolve(blob);
      };
      rec.stop();
    });
  }

  // Stops and throws the recording away.
  cancel(): void {
    if (this.recorder && this.recorder.state !== 'inactive') {
      this.recorder.onstop = null;
      this.recorder.stop();
    }
    this.release();
  }

  private release(): void {
    if (this.timer !== null) window.clearInterval(this.timer);
    this.timer = null;
    this.ctx?.close().catch(() => {});
    this.ctx = null;
    this.stream?.getTracks().forEach((t) => t.stop());
    this.stream = null;
    this.recorder = null;
    this.chunks = [];
  }
}
