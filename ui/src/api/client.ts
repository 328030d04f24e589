// The mycandy HTTP API (docs/api.md), typed.
import { readSse } from './sse';

export interface ApiErrorBody {
  code: string;
  message: string;
  field?: string;
  // Why, for a client to say in the person's language (lib/errors.ts), and every problem of the
  // request when there were several.
  reason?: string;
  params?: Record<string, string>;
  errors?: ApiErrorBody[];
}

export class ApiError extends Error {
  constructor(public status: number, public body: ApiErrorBody) {
    super(body.message);
  }
  get field(): string | undefined {
    return this.body.field;
  }
}

export interface Character {
  id: string;
  name: string;
  description: string;
  personality: string;
  scenario: string;
  first_mes: string;
  alternate_greetings: string[];
  mes_example: string;
  system_prompt: string;
  post_history_instructions: string;
  creator_notes: string;
  tags: string[];
  appearance: string;
  voice: Record<string, unknown>;
  avatar_url: string | null;
  voice_sample_url: string | null;
  // What the sample is (null without one; {} when stored before it was measured).
  voice_sample_info: { seconds?: number; sample_rate?: number; format?: string; loudness_db?: number; peak_db?: number; waveform?: number[] } | null;
  voice_status: 'none' | 'queued' | 'running' | 'done' | 'failed';
  voice_error: string;
  created_at: number;
  updated_at: number;
  extensions: Record<string, unknown>;
  // Card fields (Tavern V2/V3) kept for export.
  creator?: string;
  character_version?: string;
  nickname?: string;
  group_only_greetings?: string[];
  source?: string[];
  creator_notes_multilingual?: Record<string, string>;
  assets?: Record<string, unknown>[];
  creation_date?: number | null;
  modification_date?: number | null;
}

// What POST /api/characters/import answers.
export interface CardImport {
  character: Character;
  lorebook: { id: string; name: string; entry_count: number } | null;
  format: 'png' | 'json' | 'charx';
  spec: number;
}

// One lorebook entry (the V2 character_book entry; SillyTavern's options in `extensions`).
export interface LoreEntry {
  keys: string[];
  secondary_keys?: string[];
  content: string;
  enabled: boolean;
  insertion_order: number;
  constant?: boolean;
  selective?: boolean;
  case_sensitive?: boolean;
  name?: string;
  comment?: string;
  priority?: number;
  position?: 'before_char' | 'after_char' | '';
  use_regex?: boolean;
  extensions: Record<string, unknown>;
  [key: string]: unknown;
}

export interface Lorebook {
  id: string;
  name: string;
  description?: string;
  scan_depth?: number;
  token_budget?: number;
  recursive_scanning?: boolean;
  extensions: Record<string, unknown>;
  entries?: LoreEntry[];
  entry_count?: number;
  character_ids: string[];
  chat_ids: string[];
  created_at: number;
  updated_at: number;
}

export interface Chat {
  id: string;
  character_id: string;
  title: string;
  created_at: number;
  updated_at: number;
  generating?: boolean;
  // GET /api/chats/{id} only: the chat's voice call (another tab or device may hold it), or null.
  call?: { id: string; connected: boolean } | null;
  // In the character's chat list: how many messages, and the newest one's start.
  message_count?: number;
  last_message?: { id: string; role: string; created_at: number; excerpt: string; truncated: boolean } | null;
}

export interface PromptPreview {
  tokens: { total: number; context: number; reply_reserved: number; history: number; memory: number };
  history_used: number;
  history_dropped: number;
  summary?: { version: number; covers_messages: number } | null;
}

export interface Message {
  id: string;
  chat_id: string;
  role: 'user' | 'assistant' | 'system';
  content: string;
  swipes: string[];
  swipe_id: number;
  status: 'complete' | 'partial' | 'error';
  created_at: number;
  media: MediaEntry[];
  // Shown, never sent to the model (SillyTavern's is_system).
  hidden?: boolean;
  // The speaker's name an imported file gave ('' otherwise).
  name?: string;
  // Per swipe: how that reply was generated (null for typed or imported text).
  gen?: (GenStats | null)[];
}

export interface GenStats {
  prompt_tokens: number;
  cached_tokens: number;
  predicted_tokens: number;
  prompt_ms: number;
  predicted_ms: number;
  interrupted?: boolean;  // A call's reply the person spoke over (stored as partial).
  heard_sentences?: number;  // How many of its spoken sentences the person heard then.
  unheard?: string;  // The text after those, cut from the reply (the model does not see it).
}

// A file that belongs to a message: the audio of sentence `index` of swipe `swipe`, or a picture
// (made by image job `job`; `url` once it is done, `error` when it failed).
export interface MediaEntry {
  kind: 'audio' | 'image';
  url?: string;
  index?: number;
  swipe?: number;
  seconds?: number;
  prompt?: string;
  job?: string;
  status?: 'queued' | 'running' | 'done' | 'failed' | 'cancelled';
  error?: string;
  seed?: number;
}

export interface Job {
  id: string;
  kind: string;
  status: 'queued' | 'running' | 'done' | 'failed' | 'cancelled';
  progress: number;
  error?: string;
  result?: Record<string, unknown>;
}

// A character's voice (the `voice` object); empty strings mean "the settings' default".
export interface Voice {
  engine?: '' | 'espeak' | 'embedded' | 'http';
  voice?: string;
  language?: string;
  speed?: number;
  pitch?: number;
  clone?: boolean;
  convert?: boolean;
}

export interface Voices {
  espeak: { languages: string[]; variants: string[] };
  engines: string[];
}

export interface Component {
  state: 'ready' | 'loading' | 'unavailable' | 'not_configured' | 'error' | 'disabled';
  detail: string;
  model?: string | null;
  backend?: string;
  // llm only: the ggml devices of this build and the GPU backends compiled in.
  llama_cpp?: { device: string; device_detail: string; devices?: { name: string; description: string; type: string; memory_total: number }[]; gpu_backends?: string[] };
  rpc_servers?: string;
  // llm only: speculative decoding's draft model, and why it is not used (state error).
  draft?: { model: string; state: 'ready' | 'paused' | 'error'; detail: string } | null;
  // llm only (embedded engine): MB of the weights in 2 MiB pages (llm.huge_pages), and the kernel's setting.
  huge_pages?: { weights_mb: number; kernel: string | null };
}

export interface Health {
  status: string;
  version: string;
  // How other devices reach this server: https for a phone's microphone.
  server?: { scheme: 'http' | 'https'; tls_fingerprint: string | null; urls: string[] };
  components: Record<'db' | 'llm' | 'tts' | 'stt' | 'image', Component>;
}

export interface Timings {
  prompt_tokens: number;
  cached_tokens: number;
  prompt_ms: number;
  predicted_tokens: number;
  predicted_ms: number;
}

export type Settings = Record<string, Record<string, unknown>>;

export interface Summary {
  version: number;
  text: string;
  covers_until_message_id: string;
  source: 'auto' | 'user' | 'rollback' | 'import';
  created_at: number;
}

export interface Fact {
  id: string;
  chat_id: string;
  text: string;
  pinned: boolean;
  source: 'user' | 'auto' | 'import';
  created_at: number;
  updated_at: number;
}

export interface Memory {
  summary: Summary | null;
  summaries_history: Summary[];
  facts: Fact[];
  jobs: { id: string; kind: string; status: string }[];
}

async function request<T>(method: string, path: string, body?: unknown, raw?: Blob | ArrayBuffer): Promise<T> {
  const init: RequestInit = { method, headers: {} };
  if (raw !== undefined) {
    init.body = raw;
    (init.headers as Record<string, string>)['Content-Type'] = 'application/octet-stream';
  } else if (body !== undefined) {
    init.body = JSON.stringify(body);
    (init.headers as Record<string, string>)['Content-Type'] = 'application/json';
  }
  const res = await fetch(path, init);
  const text = await res.text();
  const json = text ? JSON.parse(text) : null;
  if (!res.ok) throw new ApiError(res.status, json?.error ?? { code: 'internal', message: `HTTP ${res.status}` });
  return json as T;
}

export const api = {
  health: () => request<Health>('GET', '/api/health'),
  settings: () => request<Settings>('GET', '/api/settings'),
  patchSettings: (patch: Settings) => request<Settings>('PATCH', '/api/settings', patch),
  // Models: the files under data/models, using one, downloading one, testing a server elsewhere.
  models: () =>
    request<{ models: { name: string; size: number; format: string; kind: string; loaded: boolean }[]; loaded: string | null; models_dir: string }>(
      'GET', '/api/models'),
  loadModel: (path: string) => request<{ loaded: string }>('POST', '/api/models/load', { path }),
  downloadModel: (url: string, sha256?: string) =>
    request<{ job: Job }>('POST', '/api/models/download', { url, ...(sha256 ? { sha256 } : {}) }),
  testRemote: (url: string, apiKey: string) =>
    request<{ ok: boolean; reachable: boolean; models: string[]; detail: string }>('POST', '/api/models/test_remote', { url, api_key: apiKey }),

  characters: async () => (await request<{ characters: Character[] }>('GET', '/api/characters')).characters,
  createCharacter: (c: Partial<Character>) => request<Character>('POST', '/api/characters', c),
  character: (id: string) => request<Character>('GET', `/api/characters/${id}`),
  trainVoice: async (id: string) => (await request<{ job: Job }>('POST', `/api/characters/${id}/train_voice`, {})).job,
  trainingJob: async (id: string) => (await request<{ job: Job | null }>('GET', `/api/characters/${id}/train_voice`)).job,
  updateCharacter: (id: string, c: Partial<Character>) => request<Character>('PATCH', `/api/characters/${id}`, c),
  deleteCharacter: (id: string) => request<unknown>('DELETE', `/api/characters/${id}`),
  importCard: (file: Blob) => request<CardImport>('POST', '/api/characters/import', undefined, file),
  exportUrl: (id: string, format: 'png' | 'json') => `/api/characters/${id}/export?format=${format}`,
  lorebooks: async () => (await request<{ lorebooks: Lorebook[] }>('GET', '/api/lorebooks')).lorebooks,
  lorebook: (id: string) => request<Lorebook>('GET', `/api/lorebooks/${id}`),
  createLorebook: (b: Partial<Lorebook>) => request<Lorebook>('POST', '/api/lorebooks', b),
  updateLorebook: (id: string, b: Partial<Lorebook>) => request<Lorebook>('PATCH', `/api/lorebooks/${id}`, b),
  deleteLorebook: (id: string) => request<unknown>('DELETE', `/api/lorebooks/${id}`),
  importLorebook: (file: Blob, characterId?: string) =>
    request<Lorebook>('POST', `/api/lorebooks/import${characterId ? `?character_id=${encodeURIComponent(characterId)}` : ''}`, undefined, file),
  uploadAvatar: (id: string, file: Blob) => request<Character>('PUT', `/api/characters/${id}/avatar`, undefined, file),
  uploadVoiceSample: (id: string, file: Blob) =>
    request<Character>('PUT', `/api/characters/${id}/voice_sample`, undefined, file),

  chats: async (characterId: string) =>
    (await request<{ chats: Chat[] }>('GET', `/api/characters/${characterId}/chats`)).chats,
  chat: (chatId: string) => request<Chat & { generating: boolean }>('GET', `/api/chats/${chatId}`),
  createChat: (characterId: string) =>
    request<{ chat: Chat; messages: Message[] }>('POST', '/api/chats', { character_id: characterId }),
  deleteChat: (id: string) => request<unknown>('DELETE', `/api/chats/${id}`),
  renameChat: (id: string, title: string) => request<Chat>('PATCH', `/api/chats/${id}`, { title }),
  // A new chat with this one's messages up to and including `messageId`.
  branchChat: (id: string, messageId: string, title?: string) =>
    request<{ chat: Chat; messages: Message[] }>('POST', `/api/chats/${id}/branch`, { message_id: messageId, ...(title ? { title } : {}) }),
  // A chat file (SillyTavern JSONL or our JSON export) becomes a new chat of the character.
  importChat: (characterId: string, file: Blob) =>
    request<{ chat: Chat; messages: Message[] }>('POST', `/api/characters/${characterId}/chats/import`, undefined, file),
  chatExportUrl: (chatId: string, format: 'jsonl' | 'json') => `/api/chats/${chatId}/export?format=${format}`,
  messages: async (chatId: string, before?: string, limit = 100) =>
    (
      await request<{ messages: Message[] }>(
        'GET',
        `/api/chats/${chatId}/messages?limit=${limit}${before ? `&before=${before}` : ''}`,
      )
    ).messages,
  editMessage: (id: string, patch: { content?: string; swipe_id?: number; hidden?: boolean }) =>
    request<Message>('PATCH', `/api/messages/${id}`, patch),
  deleteMessage: (id: string) => request<unknown>('DELETE', `/api/messages/${id}`),
  stop: (chatId: string) => request<unknown>('POST', `/api/chats/${chatId}/stop`),

  memory: (chatId: string) => request<Memory>('GET', `/api/chats/${chatId}/memory`),
  // What the next turn's prompt holds: how full the context is, how much history fits.
  promptPreview: (chatId: string) => request<PromptPreview>('GET', `/api/chats/${chatId}/prompt`),
  addFact: (chatId: string, text: string, pinned: boolean) =>
    request<Fact>('POST', `/api/chats/${chatId}/memory/facts`, { text, pinned }),
  updateFact: (id: string, patch: { text?: string; pinned?: boolean }) => request<Fact>('PATCH', `/api/memory/facts/${id}`, patch),
  deleteFact: (id: string) => request<unknown>('DELETE', `/api/memory/facts/${id}`),
  saveSummary: (chatId: string, text: string) => request<Summary>('PUT', `/api/chats/${chatId}/memory/summary`, { text }),
  rollbackSummary: (chatId: string, version: number) =>
    request<Summary>('POST', `/api/chats/${chatId}/memory/summary/rollback`, { version }),
  voices: () => request<Voices>('GET', '/api/tts/voices'),
  // Speaks `text` (emotes and markup are left out) and returns the WAV.
  tts: async (text: string, characterId?: string, voice?: Voice): Promise<Blob> => {
    const res = await fetch('/api/tts', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ text, character_id: characterId, voice }),
    });
    if (!res.ok) {
      const json = await res.json().catch(() => null);
      throw new ApiError(res.status, json?.error ?? { code: 'internal', message: `HTTP ${res.status}` });
    }
    return res.blob();
  },
  // Pictures: "send me a picture" (with a chat, it arrives there as the character's message),
  // retry, delete, and the ComfyUI workflow templates.
  requestImage: (characterId: string, prompt: string, chatId?: string) =>
    request<{ job: Job }>('POST', '/api/images', { character_id: characterId, prompt, ...(chatId ? { chat_id: chatId } : {}) }),
  retryImage: (job: string) => request<{ job: Job }>('POST', `/api/images/${job}/retry`),
  deleteImage: (job: string) => request<unknown>('DELETE', `/api/images/${job}`),
  cancelJob: (job: string) => request<Job>('POST', `/api/jobs/${job}/cancel`),
  workflows: () => request<{ workflows: string[]; active: string }>('GET', '/api/images/workflows'),
  saveWorkflow: (name: string, graph: unknown) => request<{ workflows: string[] }>('PUT', `/api/images/workflows/${encodeURIComponent(name)}`, graph),
  search: async (chatId: string, q: string) =>
    (await request<{ results: { message: Message; snippet: string }[] }>(
      'GET',
      `/api/chats/${chatId}/search?q=${encodeURIComponent(q)}`,
    )).results,
};

export interface TurnHandlers {
  onUser?: (m: Message) => void;
  onToken?: (text: string) => void;
  onSpeech?: (index: number, text: string) => void;
  onAudio?: (index: number, url: string) => void;
  onAudioError?: (e: ApiErrorBody) => void;
  onImage?: (job: Job, prompt: string) => void;
  onDone?: (m: Message, finish: string, timings: Timings) => void;
  onError?: (e: ApiErrorBody) => void;
  // Attaching to a running turn: what kind it is (and the reply it replaces or extends).
  onTurn?: (kind: 'messages' | 'regenerate' | 'continue', targetId: string | null) => void;
}

async function readTurn(res: Response, h: TurnHandlers): Promise<void> {
  if (!res.ok) {
    const json = await res.json().catch(() => null);
    throw new ApiError(res.status, json?.error ?? { code: 'internal', message: `HTTP ${res.status}` });
  }
  await readSse(res, (event, data) => {
    if (event === 'turn') h.onTurn?.(data.kind, data.target_id);
    else if (event === 'user') h.onUser?.(data.message);
    else if (event === 'token') h.onToken?.(data.text);
    else if (event === 'speech') h.onSpeech?.(data.index, data.text);
    else if (event === 'audio') h.onAudio?.(data.index, data.url);
    else if (event === 'audio_error') h.onAudioError?.(data.error);
    else if (event === 'image') h.onImage?.(data.job, data.prompt);
    else if (event === 'done') h.onDone?.(data.message, data.finish_reason, data.timings);
    else if (event === 'error') h.onError?.(data.error);
  });
}

// Follows the reply being written in a chat (after a reload): the turn so far, then the rest.
export async function attachTurn(chatId: string, h: TurnHandlers, signal?: AbortSignal): Promise<void> {
  await readTurn(await fetch(`/api/chats/${chatId}/turn`, { signal }), h);
}

// Runs a turn: kind = messages (send), regenerate or continue. Resolves when the stream ends.
export async function runTurn(
  chatId: string,
  kind: 'messages' | 'regenerate' | 'continue',
  body: unknown,
  h: TurnHandlers,
  signal?: AbortSignal,
): Promise<void> {
  // The page may go away mid-reply (a reload): the server finishes and stores the reply anyway,
  // and the reloaded page attaches to it (attachTurn). The Stop button stops a reply.
  const res = await fetch(`/api/chats/${chatId}/${kind}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ on_disconnect: 'continue', ...((body as object) ?? {}) }),
    signal,
  });
  await readTurn(res, h);
}

// Follows a job's progress (SSE) until it ends; returns a function that stops following.
export function followJob(id: string, onJob: (j: Job) => void): () => void {
  const source = new EventSource(`/api/jobs/${id}/events`);
  source.addEventListener('job', (e) => {
    const j = JSON.parse((e as MessageEvent).data) as Job;
    onJob(j);
    if (j.status === 'done' || j.status === 'failed' || j.status === 'cancelled') source.close();
  });
  // The stream ends when the job has; the browser would reconnect: don't.
  source.onerror = () => source.close();
  return () => source.close();
}
