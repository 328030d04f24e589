// Settings: model file or remote URL, samplers, context size, language; the health of each
// component with the fix it names (the prototype's "Kein Audio" / "Kein Bild" become visible states).
import { useEffect, useRef, useState } from 'react';
import { ApiError, api, type Health, type Settings } from '../api/client';
import { useT } from '../i18n';
import { Drawer } from './Drawer';
import { ModelPicker } from './ModelPicker';
import { Field, inputClass, useRevealFirstError } from './Field';
import { errorText, fieldErrors } from '../lib/errors';

interface Props {
  health: Health | null;
  onClose: () => void;
  onSaved: (s: Settings) => void;
}

const stateColor: Record<string, string> = {
  ready: 'bg-emerald-500',
  loading: 'bg-sky-500',
  unavailable: 'bg-amber-500',
  not_configured: 'bg-zinc-500',
  error: 'bg-red-500',
  disabled: 'bg-zinc-600',
};

export function SettingsPanel({ health, onClose, onSaved }: Props) {
  const t = useT();
  const [settings, setSettings] = useState<Settings | null>(null);
  const [errors, setErrors] = useState<Record<string, string>>({});
  useRevealFirstError(errors);
  const [saved, setSaved] = useState(false);
  // Edits made while a save is on its way (path → value), and which save that is: its answer is the
  // stored settings, and these go over it so a change made meanwhile is not set back.
  const editsDuringSave = useRef<Map<string, unknown> | null>(null);
  const saveSeq = useRef(0);

  const [workflows, setWorkflows] = useState<string[]>(['default']);
  const [workflowNote, setWorkflowNote] = useState<string | null>(null);

  useEffect(() => {
    api.settings().then(setSettings);
    api.workflows().then((w) => setWorkflows(w.workflows)).catch(() => {});
  }, []);

  // A workflow exported from ComfyUI ("Save (API format)"), checked by the server before it is kept.
  const uploadWorkflow = async (file: File) => {
    setWorkflowNote(null);
    const name = file.name.replace(/\.json$/i, '').replace(/[^A-Za-z0-9_-]+/g, '_').slice(0, 64) || 'workflow';
    try {
      const graph = JSON.parse(await file.text());
      const r = await api.saveWorkflow(name, graph);
      setWorkflows(r.workflows);
      set('media.image_workflow', name);
      setWorkflowNote(null);
    } catch (e) {
      setWorkflowNote(e instanceof ApiError ? errorText(t, e) : t.workflowNotJson);
    }
  };

  if (!settings) return null;
  const get = (path: string) => {
    const [a, b] = path.split('.');
    return settings[a]?.[b] as string | number;
  };
  const set = (path: string, value: unknown) => {
    const [a, b] = path.split('.');
    // From the newest state: a call after an await (a workflow upload) must not undo edits since.
    setSettings((cur) => (cur ? { ...cur, [a]: { ...cur[a], [b]: value } } : cur));
    editsDuringSave.current?.set(path, value);
    setSaved(false);
  };
  const input = (path: string, label: string, type: 'text' | 'number' = 'text', step?: string) => (
    <Field label={label} error={errors[path]}>
      <input
        className={inputClass}
        type={type}
        step={step}
        value={get(path) ?? ''}
        aria-invalid={!!errors[path]}
        onChange={(e) => set(path, type === 'number' ? (e.target.value === '' ? '' : Number(e.target.value)) : e.target.value)}
        data-testid={`setting-${path}`}
      />
    </Field>
  );

  const save = async () => {
    setErrors({});
    const seq = ++saveSeq.current;
    const edits = new Map<string, unknown>();
    editsDuringSave.current = edits;
    try {
      // Only the speech keys this panel edits (the API key stays as it is: the server never sends it).
      const media: Record<string, unknown> = {};
      for (const k of ['tts_enabled', 'tts_engine', 'tts_url', 'tts_model', 'tts_voice', 'tts_model_file', 'tts_mmproj_file',
        'image_backend', 'image_instruct', 'comfyui_url', 'a1111_url', 'image_workflow', 'image_checkpoint', 'image_quality_tags',
        'image_negative', 'image_width', 'image_height', 'image_steps', 'image_cfg', 'image_likeness', 'image_likeness_weight']) {
        media[k] = settings.media?.[k];
      }
      // Speech input: the keys this panel edits (stt.api_key stays as it is).
      const stt: Record<string, unknown> = {};
      for (const k of ['engine', 'model_path', 'vad_model_path', 'language', 'url', 'model', 'auto_send']) stt[k] = settings.stt?.[k];
      // Voice calls: when what you say has ended, and how long speech must last to count.
      const call = { silence_ms: settings.call?.silence_ms, min_speech_ms: settings.call?.min_speech_ms };
      const next = await api.patchSettings({ llm: settings.llm, chat: settings.chat, ui: settings.ui, media, stt, call });
      onSaved(next);
      if (seq !== saveSeq.current) return;  // A newer save is on its way; its answer counts.
      editsDuringSave.current = null;
      // The stored settings, with what was changed in the form meanwhile still there (and unsaved).
      let shown: Settings = next;
      for (const [path, value] of edits) {
        const [a, b] = path.split('.');
        shown = { ...shown, [a]: { ...shown[a], [b]: value } };
      }
      setSettings(shown);
      setSaved(edits.size === 0);
    } catch (e) {
      if (seq !== saveSeq.current) return;
      editsDuringSave.current = null;
      // Every bad setting at once, beside its field when this panel shows it.
      setErrors(fieldErrors(t, e, (f) => document.querySelector(`[data-testid="setting-${CSS.escape(f)}"]`) !== null));
    }
  };

  const remote = get('llm.backend') === 'remote';
  return (
    <Drawer
      title={t.settings}
      onClose={onClose}
      testId="settings"
      closeTestId="close-settings"
      footer={
        <>
          {saved && <span className="text-sm text-emerald-400" data-testid="settings-saved">{t.saved}</span>}
          <button className="rounded-lg bg-pink-700 text-white px-4 py-2 text-sm font-medium hover:bg-pink-800" onClick={save} data-testid="save-settings">
            {t.save}
          </button>
        </>
      }
    >
          <section>
            <h3 className="mb-2 text-xs font-semibold uppercase tracking-wide text-zinc-500">{t.status}</h3>
            <ul className="space-y-2" data-testid="health">
              {health &&
                (Object.keys(t.components) as (keyof typeof t.components)[]).map((k) => {
                  const c = health.components[k];
                  return (
                    <li key={k} className="rounded-lg bg-zinc-900 px-3 py-2 text-sm" data-testid={`health-${k}`}>
                      <div className="flex items-center gap-2">
                        <span className={`h-2 w-2 rounded-full ${stateColor[c.state]}`} />
                        <span className="font-medium">{t.components[k]}</span>
                        <span className="text-zinc-400">— {t.states[c.state]}</span>
                      </div>
                      {(() => {
                        const hint = c.state === 'ready' ? undefined : t.healthHints[`${k}.${c.state}`] ?? t.healthHints[c.state];
                        return hint ? <div className="mt-0.5 text-xs text-zinc-300" data-testid={`health-${k}-hint`}>{hint}</div> : null;
                      })()}
                      <div className="mt-0.5 break-words text-xs text-zinc-500">
                        {c.state !== 'ready' && <span className="sr-only">{t.details}: </span>}
                        {c.detail}
                      </div>
                      {k === 'llm' && c.llama_cpp && (
                        <div className="mt-0.5 break-words text-xs text-zinc-500" data-testid="health-llm-device">
                          {t.device}: {c.llama_cpp.device} ({c.llama_cpp.device_detail})
                          {c.llama_cpp.gpu_backends && c.llama_cpp.gpu_backends.length > 0 && ` · ${c.llama_cpp.gpu_backends.join(', ')}`}
                          {c.backend === 'rpc' && c.rpc_servers && ` · RPC ${c.rpc_servers}`}
                        </div>
                      )}
                      {k === 'llm' && c.state === 'ready' && c.huge_pages && (
                        <div className="mt-0.5 break-words text-xs text-zinc-500" data-testid="health-llm-huge-pages">
                          {t.hugePagesNow}: {c.huge_pages.weights_mb} MB
                          {c.huge_pages.weights_mb === 0 && c.huge_pages.kernel === 'never' && ` (${t.hugePagesKernelNever})`}
                        </div>
                      )}
                      {k === 'llm' && c.draft && (
                        <div className={`mt-0.5 break-words text-xs ${c.draft.state === 'error' ? 'text-amber-300' : 'text-zinc-500'}`} data-testid="health-llm-draft">
                          {t.draftModel}: {c.draft.model} — {c.draft.state === 'ready' ? t.draftOn : `${c.draft.state === 'paused' ? t.draftPaused : t.draftOff}: ${c.draft.detail}`}
                        </div>
                      )}
                    </li>
                  );
                })}
            </ul>
          </section>
          <details className="rounded-xl border border-zinc-800 p-3" data-testid="settings-models">
            <summary className="cursor-pointer text-sm font-medium">{t.modelSection}: {t.modelsOnDisk} · {t.downloadModel} · {t.remoteServer}</summary>
            <div className="mt-3">
              {/* Using a model changes llm.* here too: the form reloads them so a save does not undo it. */}
              <ModelPicker onChanged={() => api.settings().then((s) => setSettings((cur) => (cur ? { ...cur, llm: s.llm } : s)))} />
            </div>
          </details>
          <section className="space-y-3">
            <h3 className="text-xs font-semibold uppercase tracking-wide text-zinc-500">{t.model}</h3>
            <Field label={t.backend} error={errors['llm.backend']}>
              <select className={inputClass} value={get('llm.backend')} onChange={(e) => set('llm.backend', e.target.value)} data-testid="setting-llm.backend">
                <option value="embedded">{t.backendEmbedded}</option>
                <option value="remote">{t.backendRemote}</option>
              </select>
            </Field>
            {remote ? (
              <>
                {input('llm.llama_cpp_url', t.remoteUrl)}
                {input('llm.remote_model', t.remoteModel)}
                <Field label={t.remoteMode} error={errors['llm.remote_mode']}>
                  <select className={inputClass} value={get('llm.remote_mode')} onChange={(e) => set('llm.remote_mode', e.target.value)}>
                    <option value="chat">/v1/chat/completions</option>
                    <option value="completion">/completion (llama.cpp)</option>
                  </select>
                </Field>
              </>
            ) : (
              <>
                {input('llm.model_path', t.modelPath)}
                {input('llm.rpc_servers', t.rpcServers)}
                <p className="-mt-2 text-xs text-zinc-500">{t.rpcServersHint}</p>
                {input('llm.gpu_layers', t.gpuLayers, 'number')}
                <Field label={t.kvCacheType} error={errors['llm.kv_cache_type']}>
                  <select className={inputClass} value={get('llm.kv_cache_type') ?? 'f16'} onChange={(e) => set('llm.kv_cache_type', e.target.value)}
                    data-testid="setting-llm.kv_cache_type">
                    <option value="f16">f16 ({t.kvCacheFull})</option>
                    <option value="q8_0">q8_0 ({t.kvCacheHalf})</option>
                    <option value="q4_0">q4_0 ({t.kvCacheQuarter})</option>
                  </select>
                </Field>
                {input('llm.draft_model_path', t.draftModelPath)}
                <p className="-mt-2 text-xs text-zinc-500">{t.draftHint}</p>
                {settings.llm?.draft_model_path && (
                  <div className="grid grid-cols-2 gap-3">
                    {input('llm.draft_max', t.draftMax, 'number')}
                    {input('llm.draft_p_min', t.draftPMin, 'number', '0.05')}
                    <label className="col-span-2 flex items-center gap-2 text-sm">
                      <input type="checkbox" checked={settings.llm?.draft_adaptive !== false} onChange={(e) => set('llm.draft_adaptive', e.target.checked)}
                        data-testid="setting-llm.draft_adaptive" />
                      {t.draftAdaptive}
                    </label>
                  </div>
                )}
                {input('llm.parallel', t.parallel, 'number')}
                <p className="-mt-2 text-xs text-zinc-500">{t.parallelHint}</p>
                <label className="flex items-center gap-2 text-sm">
                  <input type="checkbox" checked={settings.llm?.huge_pages !== false} onChange={(e) => set('llm.huge_pages', e.target.checked)}
                    data-testid="setting-llm.huge_pages" />
                  {t.hugePages}
                </label>
                <p className="-mt-2 text-xs text-zinc-500">{t.hugePagesHint}</p>
              </>
            )}
            <div className="grid grid-cols-2 gap-3">
              {input('llm.context_size', t.contextSize, 'number')}
              {input('llm.max_tokens', t.maxTokens, 'number')}
              {input('llm.temperature', t.temperature, 'number', '0.05')}
              {input('llm.top_k', t.topK, 'number')}
              {input('llm.top_p', t.topP, 'number', '0.01')}
              {input('llm.min_p', t.minP, 'number', '0.01')}
              {input('llm.repeat_penalty', t.repeatPenalty, 'number', '0.01')}
              {input('chat.user_name', t.userName)}
            </div>
          </section>
          <section className="space-y-3">
            <h3 className="text-xs font-semibold uppercase tracking-wide text-zinc-500">{t.tts}</h3>
            <label className="flex items-center gap-2 text-sm">
              <input
                type="checkbox"
                checked={!!settings.media?.tts_enabled}
                onChange={(e) => set('media.tts_enabled', e.target.checked)}
                data-testid="setting-media.tts_enabled"
              />
              {t.ttsEnabled}
            </label>
            <Field label={t.ttsEngine} error={errors['media.tts_engine']}>
              <select className={inputClass} value={get('media.tts_engine')} onChange={(e) => set('media.tts_engine', e.target.value)} data-testid="setting-media.tts_engine">
                <option value="espeak">{t.voiceEngineEspeak}</option>
                <option value="embedded">{t.voiceEngineEmbedded}</option>
                <option value="http">{t.voiceEngineHttp}</option>
              </select>
            </Field>
            {get('media.tts_engine') === 'http' && (
              <>
                {input('media.tts_url', t.ttsUrl)}
                <div className="grid grid-cols-2 gap-3">
                  {input('media.tts_model', t.model)}
                  {input('media.tts_voice', t.voiceName)}
                </div>
              </>
            )}
            {get('media.tts_engine') === 'embedded' && (
              <>
                {input('media.tts_model_file', t.ttsModelFile)}
                {input('media.tts_mmproj_file', t.ttsMmprojFile)}
              </>
            )}
          </section>
          <section className="space-y-3" data-testid="image-settings">
            <h3 className="text-xs font-semibold uppercase tracking-wide text-zinc-500">{t.components.image}</h3>
            <Field label={t.imageBackend} error={errors['media.image_backend']}>
              <select className={inputClass} value={get('media.image_backend')} onChange={(e) => set('media.image_backend', e.target.value)} data-testid="setting-media.image_backend">
                <option value="comfyui">ComfyUI</option>
                <option value="a1111">A1111 / Forge / SD.Next</option>
                <option value="off">{t.imageOff}</option>
              </select>
            </Field>
            {get('media.image_backend') !== 'off' && (
              <>
                <label className="flex items-center gap-2 text-sm">
                  <input type="checkbox" checked={!!settings.media?.image_instruct} onChange={(e) => set('media.image_instruct', e.target.checked)}
                    data-testid="setting-media.image_instruct" />
                  {t.imageInstruct}
                </label>
                {get('media.image_backend') === 'comfyui' ? input('media.comfyui_url', t.imageComfyUrl) : input('media.a1111_url', t.imageA1111Url)}
                {get('media.image_backend') === 'comfyui' && (
                  <>
                    <Field label={t.imageWorkflow} error={errors['media.image_workflow'] ?? workflowNote ?? undefined}>
                      <div className="flex gap-2">
                        <select className={`${inputClass} min-w-0 flex-1`} value={get('media.image_workflow')} onChange={(e) => set('media.image_workflow', e.target.value)}
                          data-testid="setting-media.image_workflow">
                          {workflows.map((w) => (
                            <option key={w} value={w}>{w === 'default' ? t.imageWorkflowDefault : w}</option>
                          ))}
                        </select>
                        <label className="flex cursor-pointer items-center rounded-lg bg-zinc-800 px-3 text-sm hover:bg-zinc-700">
                          {t.imageWorkflowUpload}
                          <input type="file" accept=".json,application/json" className="sr-only"
                            onChange={(e) => e.target.files?.[0] && uploadWorkflow(e.target.files[0])} data-testid="workflow-upload" />
                        </label>
                      </div>
                    </Field>
                    <label className="flex items-center gap-2 text-sm">
                      <input type="checkbox" checked={!!settings.media?.image_likeness} onChange={(e) => set('media.image_likeness', e.target.checked)}
                        data-testid="setting-media.image_likeness" />
                      {t.imageLikeness}
                    </label>
                  </>
                )}
                {input('media.image_checkpoint', t.imageCheckpoint)}
                {input('media.image_quality_tags', t.imageQualityTags)}
                {input('media.image_negative', t.imageNegative)}
                <div className="grid grid-cols-2 gap-3">
                  {input('media.image_width', t.imageWidth, 'number')}
                  {input('media.image_height', t.imageHeight, 'number')}
                  {input('media.image_steps', t.imageSteps, 'number')}
                  {input('media.image_cfg', 'CFG', 'number', '0.5')}
                </div>
              </>
            )}
          </section>
          <section className="space-y-3" data-testid="settings-stt">
            <h3 className="text-xs font-semibold uppercase tracking-wide text-zinc-500">{t.components.stt}</h3>
            <label className="flex items-center gap-2 text-sm">
              <input type="checkbox" checked={!!settings.stt?.auto_send} onChange={(e) => set('stt.auto_send', e.target.checked)} data-testid="setting-stt.auto_send" />
              {t.sttAutoSend}
            </label>
            <div className="grid grid-cols-2 gap-3">
              <Field label={t.sttEngine} error={errors['stt.engine']}>
                <select className={inputClass} value={get('stt.engine')} onChange={(e) => set('stt.engine', e.target.value)} data-testid="setting-stt.engine">
                  <option value="embedded">whisper.cpp</option>
                  <option value="http">{t.voiceEngineHttp}</option>
                  <option value="off">{t.sttOff}</option>
                </select>
              </Field>
              <Field label={t.sttLanguage} error={errors['stt.language']}>
                <select className={inputClass} value={get('stt.language')} onChange={(e) => set('stt.language', e.target.value)} data-testid="setting-stt.language">
                  <option value="auto">{t.sttDetect}</option>
                  <option value="de">Deutsch</option>
                  <option value="en">English</option>
                </select>
              </Field>
            </div>
            {get('stt.engine') === 'embedded' && (
              <>
                {input('stt.model_path', t.sttModelPath)}
                {input('stt.vad_model_path', t.sttVadPath)}
              </>
            )}
            {get('stt.engine') === 'http' && (
              <div className="grid grid-cols-2 gap-3">
                {input('stt.url', t.ttsUrl)}
                {input('stt.model', t.model)}
              </div>
            )}
            <div className="grid grid-cols-2 gap-3" data-testid="settings-call">
              {input('call.silence_ms', t.callSilenceMs, 'number', '50')}
              {input('call.min_speech_ms', t.callMinSpeechMs, 'number', '16')}
            </div>
            <div className="space-y-2 rounded-lg bg-zinc-900 px-3 py-2 text-sm" data-testid="settings-phone">
              <p className="font-medium text-zinc-200">{t.phoneTitle}</p>
              <label className="flex items-center gap-2">
                <input type="checkbox" checked={!!settings.server?.https} onChange={(e) => set('server.https', e.target.checked)} data-testid="setting-server.https" />
                {t.httpsSetting}
              </label>
              {health?.server?.scheme === 'https' ? (
                <p className="text-xs text-zinc-400" data-testid="https-fingerprint">
                  {t.httpsOn} <span className="break-all font-mono text-zinc-300">{health.server.tls_fingerprint}</span>
                  {!settings.server?.https && <> {t.httpsFromFlag}</>}
                </p>
              ) : (
                <p className="text-xs text-zinc-400">{t.httpsHowTo}</p>
              )}
              {!!health?.server?.urls.length && (
                <ul className="text-xs text-zinc-300" data-testid="phone-urls">
                  {health.server.urls.map((u) => (
                    <li key={u} className="break-all font-mono">{u}</li>
                  ))}
                </ul>
              )}
            </div>
          </section>
          <section>
            <Field label={t.language} error={errors['ui.language']}>
              <select className={inputClass} value={get('ui.language')} onChange={(e) => set('ui.language', e.target.value)} data-testid="setting-ui.language">
                <option value="auto">{t.languageAuto}</option>
                <option value="en">English</option>
                <option value="de">Deutsch</option>
              </select>
            </Field>
          </section>
          {errors._form && <p className="text-sm text-red-400">{errors._form}</p>}
    </Drawer>
  );
}
