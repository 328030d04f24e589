// VoicePanel: a saved character's voice sample and trained voice, in the CharacterEditor. The sample
// (uploaded or recorded with the microphone) goes to the server at once and comes back measured:
// length, the file's rate, format, loudness and a waveform, with a player. "Train voice" starts the
// RVC training job and follows it live (queued → running with progress → done/failed), with cancel;
// a running training is found again after a reload.
import { useEffect, useRef, useState } from 'react';
import { api, followJob, type Character, type Job } from '../api/client';
import { format, useT } from '../i18n';
import { errorText } from '../lib/errors';
import { Recorder, microphoneAvailable } from '../lib/recorder';
import { FilePicker } from './FilePicker';

interface Props {
  character: Character;
  onChange: (c: Character) => void;
  convert: boolean;
  onConvert: (on: boolean) => void;
}

function Waveform({ peaks }: { peaks: number[] }) {
  const w = peaks.length * 2;
  return (
    <svg viewBox={`0 0 ${w} 40`} preserveAspectRatio="none" className="h-10 w-full" role="img" aria-hidden data-testid="voice-waveform">
      {peaks.map((p, i) => {
        const h = Math.max(1, Math.min(1, p) * 38);
        return <rect key={i} x={i * 2} y={20 - h / 2} width={1.4} height={h} className="fill-pink-400/80" />;
      })}
    </svg>
  );
}

export function VoicePanel({ character, onChange, convert, onConvert }: Props) {
  const t = useT();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [job, setJob] = useState<Job | null>(null);
  const [recording, setRecording] = useState(false);
  const [recordSeconds, setRecordSeconds] = useState(0);
  const [level, setLevel] = useState(0);
  const recorder = useRef<Recorder | null>(null);
  const stopFollowing = useRef<(() => void) | null>(null);
  const info = character.voice_sample_info;
  const active = job?.status === 'queued' || job?.status === 'running';

  // Follows a job until it ends, then reloads the character (its voice_status changed with it).
  const follow = (j: Job) => {
    stopFollowing.current?.();
    setJob(j);
    stopFollowing.current = followJob(j.id, (next) => {
      setJob(next);
      if (next.status === 'done' || next.status === 'failed' || next.status === 'cancelled') {
        api.character(character.id).then(onChange).catch(() => {});
      }
    });
  };

  useEffect(() => {
    let alive = true;
    api
      .trainingJob(character.id)
      .then((j) => {
        if (!alive || !j) return;
        if (j.status === 'queued' || j.status === 'running') follow(j);
        else setJob(j);
      })
      .catch(() => {});
    return () => {
      alive = false;
      stopFollowing.current?.();
      recorder.current?.cancel();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [character.id]);

  useEffect(() => {
    if (!recording) return;
    const started = Date.now();
    const timer = window.setInterval(() => setRecordSeconds(Math.floor((Date.now() - started) / 1000)), 250);
    return () => window.clearInterval(timer);
  }, [recording]);

  const upload = async (blob: Blob) => {
    setBusy(true);
    setError(null);
    try {
      onChange(await api.uploadVoiceSample(character.id, blob));
      setJob(null);
    } catch (e) {
      setError(errorText(t, e));
    } finally {
      setBusy(false);
    }
  };

  const toggleRecording = async () => {
    setError(null);
    if (recording && recorder.current) {
      const blob = await recorder.current.stop();
      recorder.current = null;
      setRecording(false);
      setLevel(0);
      await upload(blob);
      return;
    }
    const r = new Recorder();
    try {
      await r.start(setLevel);
      recorder.current = r;
      setRecordSeconds(0);
      setRecording(true);
    } catch (e) {
      r.cancel();
      setError(format(t.micDenied, { error: e instanceof Error ? e.message : String(e) }));
    }
  };

  const train = async () => {
    setError(null);
    try {
      const j = await api.trainVoice(character.id);
      onChange({ ...character, voice_status: 'queued', voice_error: '' });
      follow(j);
    } catch (e) {
      setError(errorText(t, e));
    }
  };

  const cancel = async () => {
    if (!job) return;
    try {
      await api.cancelJob(job.id);
    } catch (e) {
      setError(errorText(t, e));
    }
  };

  const status = active ? job!.status : character.voice_status;
  const statusText =
    status === 'running'
      ? format(t.trainingRunning, { percent: String(Math.round((job?.progress ?? 0) * 100)) })
      : status === 'queued'
        ? t.trainingQueued
        : status === 'done'
          ? t.trainingDone
          : status === 'failed'
            ? t.trainingFailed
            : t.trainingNone;

  return (
    <div className="space-y-3" data-testid="voice-panel">
      <div className="flex flex-wrap items-center gap-2">
        <FilePicker
          accept="audio/*,.wav,.mp3,.flac,.ogg,.opus,.webm"
          label={t.chooseFile}
          name={`${t.voiceSample}: ${t.chooseFile}`}
          testId="voice-input"
          onFile={(f) => {
            if (f) void upload(f);
          }}
        />
        {microphoneAvailable() && (
          <button
            type="button"
            className={`flex min-h-10 items-center gap-2 rounded-lg px-3 text-sm ${recording ? 'bg-red-700 text-white hover:bg-red-800' : 'bg-zinc-800 hover:bg-zinc-700'}`}
            onClick={() => void toggleRecording()}
            disabled={busy}
            data-testid="voice-record"
            data-seconds={recording ? recordSeconds : undefined}
          >
            <span className={`inline-block h-2.5 w-2.5 rounded-full ${recording ? 'bg-white' : 'bg-red-500'}`} aria-hidden />
            {recording ? format(t.stopRecordingSample, { seconds: String(recordSeconds) }) : t.recordSample}
          </button>
        )}
        {recording && (
          <span className="h-1.5 w-16 overflow-hidden rounded bg-zinc-800" aria-hidden>
            <span className="block h-full bg-pink-500" style={{ width: `${Math.round(level * 100)}%` }} />
          </span>
        )}
        {busy && <span className="text-xs text-zinc-400">{t.uploadingSample}</span>}
      </div>
      {recording && <p className="text-xs text-zinc-500">{t.recordSampleHint}</p>}
      {character.voice_sample_url && (
        <div className="space-y-1 rounded-lg bg-zinc-900 p-2" data-testid="voice-sample">
          {info?.waveform && info.waveform.length > 0 && <Waveform peaks={info.waveform} />}
          <audio controls src={`${character.voice_sample_url}?v=${character.updated_at}`} className="w-full" data-testid="voice-preview" />
          {info?.seconds !== undefined && (
            <p className="text-xs text-zinc-400" data-testid="voice-sample-info">
              {format(t.voiceSampleInfo, {
                seconds: info.seconds.toFixed(1),
                rate: String(info.sample_rate ?? '?'),
                format: (info.format ?? '').toUpperCase(),
                loudness: info.loudness_db !== undefined ? info.loudness_db.toFixed(1) : '?',
              })}
              {info.loudness_db !== undefined && info.loudness_db < -35 && <span className="text-amber-300"> — {t.voiceSampleQuiet}</span>}
            </p>
          )}
        </div>
      )}
      <div className="space-y-2 rounded-lg border border-zinc-800 p-2" data-testid="voice-training">
        <div className="flex flex-wrap items-center gap-2">
          <span
            className={`rounded-full px-2 py-0.5 text-xs ${status === 'done' ? 'bg-emerald-900 text-emerald-200' : status === 'failed' ? 'bg-red-900 text-red-200' : 'bg-zinc-800 text-zinc-300'}`}
            data-testid="voice-training-status"
            data-status={status}
          >
            {statusText}
          </span>
          {active ? (
            <button type="button" className="min-h-10 rounded-lg bg-zinc-800 px-3 text-sm hover:bg-zinc-700" onClick={() => void cancel()} data-testid="voice-train-cancel">
              {t.cancelTraining}
            </button>
          ) : (
            <button
              type="button"
              className="min-h-10 rounded-lg bg-pink-700 px-3 text-sm text-white hover:bg-pink-800 disabled:opacity-50"
              disabled={!character.voice_sample_url || busy || recording}
              onClick={() => void train()}
              data-testid="voice-train"
              title={character.voice_sample_url ? t.trainHint : t.trainNeedsSample}
            >
              {status === 'done' ? t.trainAgain : t.trainVoice}
            </button>
          )}
        </div>
        {active && (
          <div className="h-2 overflow-hidden rounded bg-zinc-800" role="progressbar" aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round((job?.progress ?? 0) * 100)}>
            <div className="h-full bg-pink-500 transition-all" style={{ width: `${Math.round((job?.progress ?? 0) * 100)}%` }} data-testid="voice-train-progress" />
          </div>
        )}
        {!active && character.voice_error && (
          <p className="break-words text-xs text-red-300" data-testid="voice-train-error">
            {character.voice_error}
          </p>
        )}
        <p className="text-xs text-zinc-500">{t.trainHint}</p>
        {status === 'done' && (
          <label className="flex items-start gap-2 text-sm">
            <input type="checkbox" className="mt-1" checked={convert} onChange={(e) => onConvert(e.target.checked)} data-testid="voice-convert" />
            <span>{t.useTrainedVoice}</span>
          </label>
        )}
      </div>
      {error && (
        <p className="break-words text-xs text-red-300" role="alert" data-testid="voice-panel-error">
          {error}
        </p>
      )}
    </div>
  );
}
