// Choosing the language model, three ways: a GGUF file already in data/models/llm (use it), a
// download by URL (progress, cancel; optional SHA-256), or a model server elsewhere — llama.cpp's
// server, Ollama, LM Studio, KoboldCpp — with "Test connection" before using it. Used by the
// first-run screen and the settings.
import { useCallback, useEffect, useRef, useState } from 'react';
import { api, followJob, type Component, type Job } from '../api/client';
import { format, useT } from '../i18n';
import { errorText } from '../lib/errors';
import { Field, inputClass } from './Field';

interface LocalModel {
  name: string;
  size: number;
  kind: string;
  loaded: boolean;
}

export function formatBytes(t: ReturnType<typeof useT>, n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toLocaleString(t.locale, { maximumFractionDigits: i >= 3 ? 1 : 0 })} ${units[i]}`;
}

export function ModelPicker({ onChanged }: { onChanged?: () => void }) {
  const t = useT();
  const [models, setModels] = useState<LocalModel[] | null>(null);
  const [dir, setDir] = useState('');
  const [llm, setLlm] = useState<Component | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const [url, setUrl] = useState('');
  const [sha, setSha] = useState('');
  const [job, setJob] = useState<Job | null>(null);
  const stopFollow = useRef<(() => void) | null>(null);
  const [remoteUrl, setRemoteUrl] = useState('');
  const [remoteKey, setRemoteKey] = useState('');
  const [probe, setProbe] = useState<{ ok: boolean; reachable: boolean; models: string[]; detail: string } | null>(null);
  const [testing, setTesting] = useState(false);
  const [remoteModel, setRemoteModel] = useState('');
  const [backend, setBackend] = useState<string>('embedded');

  const load = useCallback(async () => {
    const [list, health, settings] = await Promise.all([api.models(), api.health(), api.settings()]);
    setModels(list.models.filter((m) => m.kind === 'llm'));
    setDir(list.models_dir);
    setLlm(health.components.llm);
    setBackend(String(settings.llm?.backend ?? 'embedded'));
    setRemoteUrl((u) => u || String(settings.llm?.llama_cpp_url ?? ''));
  }, []);
  useEffect(() => {
    load().catch((e) => setNote(errorText(t, e)));
    return () => stopFollow.current?.();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  // After a change: the engine loads the model; health says when it is ready (or why not).
  const watchHealth = async () => {
    for (let i = 0; i < 240; i++) {
      const h = await api.health().catch(() => null);
      if (h) {
        setLlm(h.components.llm);
        if (h.components.llm.state !== 'loading') break;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    await load().catch(() => {});
    onChanged?.();
  };

  const use = async (name: string) => {
    setNote(null);
    try {
      await api.loadModel(name);
      await watchHealth();
    } catch (e) {
      setNote(errorText(t, e));
    }
  };

  const download = async () => {
    setNote(null);
    try {
      const { job: started } = await api.downloadModel(url.trim(), sha.trim() || undefined);
      setJob(started);
      stopFollow.current = followJob(started.id, (j) => {
        setJob(j);
        if (j.status === 'done') load().catch(() => {});
      });
    } catch (e) {
      setNote(errorText(t, e));
    }
  };

  const test = async () => {
    setTesting(true);
    setProbe(null);
    try {
      const p = await api.testRemote(remoteUrl.trim(), remoteKey);
      setProbe(p);
      setRemoteModel((m) => (p.models.includes(m) ? m : p.models[0] ?? ''));
    } catch (e) {
      setProbe({ ok: false, reachable: false, models: [], detail: errorText(t, e) });
    } finally {
      setTesting(false);
    }
  };

  const useRemote = async () => {
    setNote(null);
    try {
      // The model it is asked for: Ollama and LM Studio need a name (llm.remote_model).
      const patch: Record<string, unknown> = { backend: 'remote', llama_cpp_url: remoteUrl.trim(), remote_model: remoteModel };
      if (remoteKey) patch.api_key = remoteKey;
      await api.patchSettings({ llm: patch });
      await watchHealth();
    } catch (e) {
      setNote(errorText(t, e));
    }
  };

  const button = 'min-h-10 rounded-lg px-3 py-2 text-sm font-medium disabled:opacity-50';
  const running = job && (job.status === 'queued' || job.status === 'running');
  return (
    <div className="space-y-4" data-testid="model-picker">
      {llm && (
        <p className="text-sm" data-testid="model-state" data-state={llm.state}>
          <span className="font-medium">{t.states[llm.state as keyof typeof t.states] ?? llm.state}</span>
          {llm.state === 'ready' && llm.model ? ` — ${llm.model}` : ''}
          {llm.state !== 'ready' && llm.detail ? <span className="block text-xs text-zinc-500">{llm.detail}</span> : null}
        </p>
      )}

      <section className="space-y-2">
        <h4 className="text-sm font-medium">{t.modelsOnDisk}</h4>
        {models && models.length === 0 && (
          <p className="text-xs text-zinc-500" data-testid="no-local-models">{format(t.noModelsOnDisk, { dir: `${dir}/llm` })}</p>
        )}
        <ul className="space-y-1">
          {models?.map((m) => (
            <li key={m.name} className="flex items-center gap-2 rounded-lg bg-zinc-900 px-3 py-2 text-sm" data-testid="local-model">
              <span className="min-w-0 flex-1 truncate" title={m.name}>{m.name.replace(/^llm\//, '')}</span>
              <span className="shrink-0 text-xs text-zinc-500">{formatBytes(t, m.size)}</span>
              {m.loaded && backend !== 'remote' ? (
                <span className="shrink-0 text-xs text-emerald-400" data-testid="model-in-use">{t.inUse}</span>
              ) : (
                <button className={`${button} shrink-0 bg-zinc-800 hover:bg-zinc-700`} onClick={() => use(m.name)} data-testid="use-model">
                  {t.useModel}
                </button>
              )}
            </li>
          ))}
        </ul>
      </section>

      <section className="space-y-2">
        <h4 className="text-sm font-medium">{t.downloadModel}</h4>
        <Field label={t.modelUrl}>
          <input className={inputClass} value={url} onChange={(e) => setUrl(e.target.value)} placeholder="https://…/model.Q4_K_M.gguf" inputMode="url" data-testid="model-url" />
        </Field>
        <Field label={t.modelSha}>
          <input className={inputClass} value={sha} onChange={(e) => setSha(e.target.value)} placeholder={t.optional} data-testid="model-sha" />
        </Field>
        {running ? (
          <div className="space-y-1" data-testid="download-progress">
            <div className="h-2 overflow-hidden rounded-full bg-zinc-800" role="progressbar" aria-label={t.downloadModel}
              aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(job.progress * 100)}>
              <div className="h-full bg-pink-600 transition-all" style={{ width: `${Math.round(job.progress * 100)}%` }} />
            </div>
            <div className="flex items-center justify-between text-xs text-zinc-400">
              <span>{Math.round(job.progress * 100)} %</span>
              <button className="rounded px-2 py-1 hover:bg-zinc-800" onClick={() => api.cancelJob(job.id)} data-testid="cancel-download">{t.cancel}</button>
            </div>
          </div>
        ) : (
          <button className={`${button} bg-zinc-800 hover:bg-zinc-700`} disabled={!url.trim()} onClick={download} data-testid="start-download">
            {t.startDownload}
          </button>
        )}
        {job?.status === 'done' && <p className="text-xs text-emerald-400" data-testid="download-done">{format(t.downloadDone, { name: String(job.result?.name ?? '').replace(/^llm\//, '') })}</p>}
        {job?.status === 'failed' && <p className="text-xs text-red-400" data-testid="download-failed">{job.error}</p>}
        {job?.status === 'cancelled' && <p className="text-xs text-zinc-500">{t.downloadCancelled}</p>}
      </section>

      <section className="space-y-2">
        <h4 className="text-sm font-medium">{t.remoteServer}</h4>
        <p className="text-xs text-zinc-500">{t.remoteServerHint}</p>
        <Field label={t.remoteUrl}>
          <input className={inputClass} value={remoteUrl} onChange={(e) => setRemoteUrl(e.target.value)} placeholder="http://127.0.0.1:8080" inputMode="url" data-testid="remote-url" />
        </Field>
        <Field label={t.apiKey}>
          <input className={inputClass} type="password" value={remoteKey} onChange={(e) => setRemoteKey(e.target.value)} placeholder={t.optional} autoComplete="off" data-testid="remote-key" />
        </Field>
        {probe?.ok && probe.models.length > 1 && (
          <Field label={t.remoteModel}>
            <select className={inputClass} value={remoteModel} onChange={(e) => setRemoteModel(e.target.value)} data-testid="remote-model">
              {probe.models.map((m) => <option key={m} value={m}>{m}</option>)}
            </select>
          </Field>
        )}
        <div className="flex flex-wrap gap-2">
          <button className={`${button} bg-zinc-800 hover:bg-zinc-700`} disabled={!remoteUrl.trim() || testing} onClick={test} data-testid="test-remote">
            {testing ? t.testing : t.testConnection}
          </button>
          <button className={`${button} bg-zinc-800 hover:bg-zinc-700`} disabled={!probe?.ok} onClick={useRemote} data-testid="use-remote">
            {t.useServer}
          </button>
        </div>
        {probe && (
          <p className={`text-xs ${probe.ok ? 'text-emerald-400' : 'text-red-400'}`} role="status" data-testid="remote-result" data-ok={probe.ok}>
            {probe.ok ? format(t.remoteOk, { models: probe.models.slice(0, 5).join(', ') || '—' }) : `${probe.reachable ? t.remoteWrong : t.remoteDown} ${probe.detail}`}
          </p>
        )}
      </section>
      {note && <p className="text-sm text-red-400" role="alert">{note}</p>}
    </div>
  );
}
