// Speech to text: POST /api/stt with the recording as the body (the server decides the format by
// its bytes: WebM/Opus from Chrome and Firefox, Ogg/Opus, WAV, MP4 is not read).
import { ApiError } from './client';

export interface Transcript {
  text: string;
  language: string;
  segments: { start: number; end: number; text: string }[];
  duration: number;
  speech_seconds: number;
}

export async function transcribe(
  audio: Blob,
  opts: { language?: string; prompt?: string; signal?: AbortSignal } = {},
): Promise<Transcript> {
  const q = new URLSearchParams();
  if (opts.language) q.set('language', opts.language);
  if (opts.prompt) q.set('prompt', opts.prompt);
  const res = await fetch(`/api/stt${q.size ? `?${q}` : ''}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/octet-stream' },
    body: audio,
    signal: opts.signal,
  });
  const text = await res.text();
  const json = text ? JSON.parse(text) : null;
  if (!res.ok) throw new ApiError(res.status, json?.error ?? { code: 'internal', message: `HTTP ${res.status}` });
  return json as Transcript;
}

// The prompt that helps Whisper spell: the character's name and the last words of the chat
// (at most 300 characters; the server takes 1000 bytes).
export function sttPrompt(name: string, recent: string): string {
  const tail = recent.replace(/\s+/g, ' ').trim().slice(-240);
  return `${name}. ${tail}`.slice(0, 300);
}
