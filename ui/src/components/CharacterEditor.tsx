// CharacterEditor: every character field of the API; avatar upload with preview; voice-sample
// upload with playback; the character's voice (engine, voice, language, speed, pitch, clone) with a
// "test voice" button; the server's validation errors shown at the field.
import { useEffect, useState } from 'react';
import { ApiError, api, type Character, type Voice } from '../api/client';
import { audioQueue } from '../lib/audioQueue';
import { errorText, fieldErrors } from '../lib/errors';
import { format, useT } from '../i18n';
import { Drawer } from './Drawer';
import { Field, inputClass, useRevealFirstError } from './Field';
import { FilePicker } from './FilePicker';
import { VoicePanel } from './VoicePanel';
import { LorebookEditor } from './LorebookEditor';

type TextKey =
  | 'name'
  | 'description'
  | 'personality'
  | 'scenario'
  | 'first_mes'
  | 'mes_example'
  | 'system_prompt'
  | 'post_history_instructions'
  | 'creator_notes'
  | 'appearance';

// The fields this editor shows an error beside; the server's problems with others go to the form.
const SHOWN = new Set(['name', 'description', 'personality', 'scenario', 'first_mes', 'mes_example', 'system_prompt',
  'post_history_instructions', 'creator_notes', 'appearance', 'avatar', 'alternate_greetings', 'tags', 'voice_sample', 'voice']);
const shownInEditor = (f: string) =>
  SHOWN.has(f) || f.startsWith('voice.') || f.startsWith('extensions.mycandy.image.') || f.startsWith('extensions.mycandy.sampling.') ||
  f === 'extensions.depth_prompt.depth' || f === 'extensions.depth_prompt.prompt';
// The samplers a character may set for itself (the chat's most used; the API takes all of a turn's).
const SAMPLER_KEYS = ['temperature', 'top_p', 'min_p', 'top_k', 'repeat_penalty', 'max_tokens'] as const;

interface Props {
  character: Character | null;
  onClose: () => void;
  onSaved: (c: Character) => void;
}

export function CharacterEditor({ character, onClose, onSaved }: Props) {
  const t = useT();
  const [form, setForm] = useState(() => ({
    name: character?.name ?? '',
    description: character?.description ?? '',
    personality: character?.personality ?? '',
    scenario: character?.scenario ?? '',
    first_mes: character?.first_mes ?? '',
    mes_example: character?.mes_example ?? '',
    system_prompt: character?.system_prompt ?? '',
    post_history_instructions: character?.post_history_instructions ?? '',
    creator_notes: character?.creator_notes ?? '',
    appearance: character?.appearance ?? '',
    alternate_greetings: character?.alternate_greetings ?? [],
    tags: (character?.tags ?? []).join(', '),
  }));
  const [avatar, setAvatar] = useState<File | null>(null);
  const [avatarPreview, setAvatarPreview] = useState<string | null>(
    character?.avatar_url ? `${character.avatar_url}?v=${character.updated_at}` : null,
  );
  const [sample, setSample] = useState<File | null>(null);
  // The saved character as the voice panel last left it (a sample uploaded there is saved at once).
  const [current, setCurrent] = useState<Character | null>(character);
  const [samplePreview, setSamplePreview] = useState<string | null>(character?.voice_sample_url ?? null);
  const [errors, setErrors] = useState<Record<string, string>>({});
  useRevealFirstError(errors);
  const [busy, setBusy] = useState(false);
  const [showLore, setShowLore] = useState(false);
  const [voice, setVoice] = useState<Voice>(() => ({
    engine: '',
    voice: '',
    language: 'en',
    speed: 1,
    pitch: 50,
    clone: false,
    ...((character?.voice ?? {}) as Voice),
  }));
  // Pictures (extensions.mycandy.image): empty fields use the settings' values.
  const ownImage = (((character?.extensions?.mycandy as Record<string, unknown> | undefined)?.image ?? {}) as Record<string, unknown>);
  const [img, setImg] = useState(() => ({
    seed: ownImage.seed !== undefined && ownImage.seed !== -1 ? String(ownImage.seed) : '',
    width: ownImage.width !== undefined ? String(ownImage.width) : '',
    height: ownImage.height !== undefined ? String(ownImage.height) : '',
    steps: ownImage.steps !== undefined ? String(ownImage.steps) : '',
    likeness: ownImage.likeness === undefined ? 'default' : ownImage.likeness ? 'on' : 'off',
    loras: ((ownImage.loras as { name: string; weight?: number }[] | undefined) ?? []).map((l) => ({ name: l.name, weight: String(l.weight ?? 0.8) })),
  }));
  const imageBody = () => {
    const out: Record<string, unknown> = {};
    const num = (v: string) => (v.trim() === '' ? undefined : Number(v));
    for (const k of ['seed', 'width', 'height', 'steps'] as const) {
      const n = num(img[k]);
      if (n !== undefined) out[k] = n;
    }
    if (img.likeness !== 'default') out.likeness = img.likeness === 'on';
    const loras = img.loras.filter((l) => l.name.trim()).map((l) => ({ name: l.name.trim(), weight: Number(l.weight) }));
    if (loras.length) out.loras = loras;
    for (const k of ['checkpoint', 'negative']) if (ownImage[k] !== undefined) out[k] = ownImage[k];
    return out;
  };
  const imgError = (k: string) => errors[`extensions.mycandy.image.${k}`];
  // The character's own samplers (extensions.mycandy.sampling; empty = the settings') and its note
  // (SillyTavern's extensions.depth_prompt: text put that many messages from the end).
  const ownSampling = (((character?.extensions?.mycandy as Record<string, unknown> | undefined)?.sampling ?? {}) as Record<string, unknown>);
  const [samplers, setSamplers] = useState<Record<string, string>>(() =>
    Object.fromEntries(SAMPLER_KEYS.map((k) => [k, ownSampling[k] !== undefined ? String(ownSampling[k]) : ''])));
  const ownNote = (character?.extensions?.depth_prompt ?? {}) as { prompt?: string; depth?: number; role?: string };
  const [note, setNote] = useState({ prompt: ownNote.prompt ?? '', depth: ownNote.depth !== undefined ? String(ownNote.depth) : '4' });
  const samplingBody = () => {
    // Only the samplers the person set; other keys a card brought stay.
    const out: Record<string, unknown> = { ...ownSampling };
    for (const k of SAMPLER_KEYS) {
      if (samplers[k].trim() === '') delete out[k];
      else out[k] = Number(samplers[k]);
    }
    return out;
  };
  const [voiceNames, setVoiceNames] = useState<string[]>([]);
  const [testing, setTesting] = useState(false);
  useEffect(() => {
    api
      .voices()
      .then((v) => setVoiceNames([...v.espeak.languages, ...v.espeak.variants.slice(0, 20).map((x) => `${voice.language || 'en'}+${x}`)]))
      .catch(() => {});
    // The variant suggestions follow the language chosen when the editor opened.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);
  // Only what the person chose is stored; empty fields fall back to the settings.
  const voiceBody = (): Voice => {
    const v: Voice = { language: voice.language, speed: Number(voice.speed), pitch: Number(voice.pitch), clone: !!voice.clone,
      convert: voice.convert !== false };
    if (voice.engine) v.engine = voice.engine;
    if (voice.voice?.trim()) v.voice = voice.voice.trim();
    return v;
  };
  const testVoice = async () => {
    const q = audioQueue();
    q.unlock();
    q.stop();
    setTesting(true);
    setErrors({});
    try {
      const sample = form.first_mes.trim() || t.testVoiceText;
      const wav = await api.tts(sample.slice(0, 400), character?.id, voiceBody());
      q.enqueue(URL.createObjectURL(wav));
    } catch (e) {
      if (e instanceof ApiError && e.field?.startsWith('voice')) setErrors(fieldErrors(t, e, shownInEditor));
      else setErrors({ 'voice.voice': errorText(t, e) });
    } finally {
      setTesting(false);
    }
  };

  const text = (key: TextKey, label: string, rows = 0) => (
    <Field label={label} error={errors[key]}>
      {rows ? (
        <textarea
          className={`${inputClass} resize-y`}
          rows={rows}
          value={form[key]}
          aria-invalid={!!errors[key]}
          onChange={(e) => setForm({ ...form, [key]: e.target.value })}
          data-testid={`field-${key}`}
        />
      ) : (
        <input
          className={inputClass}
          value={form[key]}
          aria-invalid={!!errors[key]}
          onChange={(e) => setForm({ ...form, [key]: e.target.value })}
          data-testid={`field-${key}`}
        />
      )}
    </Field>
  );

  const save = async () => {
    setBusy(true);
    setErrors({});
    const body = {
      ...form,
      alternate_greetings: form.alternate_greetings.filter((g) => g.trim()),
      tags: form.tags.split(',').map((s) => s.trim()).filter(Boolean),
      voice: { ...((character?.voice ?? {}) as Voice), ...voiceBody() },
      extensions: (() => {
        const ext: Record<string, unknown> = {
          ...(character?.extensions ?? {}),
          mycandy: { ...((character?.extensions?.mycandy as Record<string, unknown> | undefined) ?? {}), image: imageBody(), sampling: samplingBody() },
        };
        if (note.prompt.trim()) ext.depth_prompt = { ...ownNote, prompt: note.prompt, depth: note.depth.trim() === '' ? 4 : Number(note.depth), role: ownNote.role ?? 'system' };
        else delete ext.depth_prompt;
        return ext;
      })(),
    };
    try {
      let saved = character ? await api.updateCharacter(character.id, body) : await api.createCharacter(body);
      try {
        if (avatar) saved = await api.uploadAvatar(saved.id, avatar);
      } catch (e) {
        if (e instanceof ApiError) {
          setErrors({ avatar: errorText(t, e) });
          return;
        }
        throw e;
      }
      try {
        if (sample) saved = await api.uploadVoiceSample(saved.id, sample);
      } catch (e) {
        if (e instanceof ApiError) {
          setErrors({ voice_sample: errorText(t, e) });
          return;
        }
        throw e;
      }
      onSaved(saved);
    } catch (e) {
      // Every bad field at once, each in the person's language.
      setErrors(fieldErrors(t, e, shownInEditor));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Drawer
      title={character ? format(t.editCharacter, { name: character.name }) : t.createCharacter}
      onClose={onClose}
      testId="character-editor"
      wide
      footer={
        <>
          <button className="rounded-lg px-4 py-2 text-sm hover:bg-zinc-800" onClick={onClose}>
            {t.cancel}
          </button>
          <button
            className="rounded-lg bg-pink-700 text-white px-4 py-2 text-sm font-medium hover:bg-pink-800 disabled:opacity-50"
            onClick={save}
            disabled={busy}
            data-testid="save-character"
          >
            {t.save}
          </button>
        </>
      }
    >
          {character && (
            <div className="flex flex-wrap gap-2" data-testid="card-export">
              <a
                className="flex min-h-10 items-center rounded-lg bg-zinc-800 px-3 text-sm hover:bg-zinc-700"
                href={api.exportUrl(character.id, 'png')}
                download
                data-testid="export-png"
              >
                {t.exportPng}
              </a>
              <a
                className="flex min-h-10 items-center rounded-lg bg-zinc-800 px-3 text-sm hover:bg-zinc-700"
                href={api.exportUrl(character.id, 'json')}
                download
                data-testid="export-json"
              >
                {t.exportJson}
              </a>
              <button
                type="button"
                className="flex min-h-10 items-center rounded-lg bg-zinc-800 px-3 text-sm hover:bg-zinc-700"
                onClick={() => setShowLore(true)}
                data-testid="open-lorebooks"
              >
                {t.lorebooks}
              </button>
            </div>
          )}
          {character && showLore && <LorebookEditor character={character} onClose={() => setShowLore(false)} />}
          <div className="flex items-center gap-4">
            <div className="h-24 w-24 shrink-0 overflow-hidden rounded-full bg-zinc-800">
              {avatarPreview && <img src={avatarPreview} alt="" className="h-full w-full object-cover" data-testid="avatar-preview" />}
            </div>
            <Field label={t.avatar} error={errors.avatar}>
              <FilePicker
                accept="image/png,image/jpeg,image/webp"
                label={t.chooseFile}
                testId="avatar-input"
                onFile={(f) => {
                  setAvatar(f);
                  if (f) setAvatarPreview(URL.createObjectURL(f));
                }}
              />
            </Field>
          </div>
          {text('name', t.name)}
          {text('description', t.description, 4)}
          {text('personality', t.personality, 2)}
          {text('scenario', t.scenario, 2)}
          {text('first_mes', t.firstMessage, 3)}
          <Field label={t.alternateGreetings} error={errors.alternate_greetings}>
            <div className="space-y-2">
              {form.alternate_greetings.map((g, i) => (
                <div key={i} className="flex gap-2">
                  <textarea
                    className={`${inputClass} flex-1`}
                    rows={2}
                    value={g}
                    onChange={(e) => {
                      const next = [...form.alternate_greetings];
                      next[i] = e.target.value;
                      setForm({ ...form, alternate_greetings: next });
                    }}
                  />
                  <button
                    className="px-2 text-zinc-500 hover:text-red-400"
                    onClick={() => setForm({ ...form, alternate_greetings: form.alternate_greetings.filter((_, k) => k !== i) })}
                  >
                    ✕
                  </button>
                </div>
              ))}
              <button
                type="button"
                className="rounded-lg bg-zinc-900 px-3 py-1.5 text-sm hover:bg-zinc-800"
                onClick={() => setForm({ ...form, alternate_greetings: [...form.alternate_greetings, ''] })}
              >
                + {t.addGreeting}
              </button>
            </div>
          </Field>
          {text('mes_example', t.exampleDialogues, 4)}
          {text('appearance', t.appearance, 2)}
          <Field label={t.tags} error={errors.tags}>
            <input className={inputClass} value={form.tags} onChange={(e) => setForm({ ...form, tags: e.target.value })} data-testid="field-tags" />
          </Field>
          {text('system_prompt', t.systemPrompt, 3)}
          {text('post_history_instructions', t.postHistory, 2)}
          {text('creator_notes', t.creatorNotes, 2)}
          {current ? (
            // Not inside a <label>: a click on the waveform or the status must not open the file chooser.
            <section className="space-y-2">
              <h3 className="text-sm text-zinc-300">{t.voiceSample}</h3>
              <VoicePanel
                character={current}
                onChange={setCurrent}
                convert={voice.convert !== false}
                onConvert={(on) => setVoice({ ...voice, convert: on })}
              />
            </section>
          ) : (
            <Field label={t.voiceSample} error={errors.voice_sample}>
              <FilePicker
                accept="audio/*,.wav,.mp3,.flac,.ogg,.opus,.webm"
                label={t.chooseFile}
                testId="voice-input"
                onFile={(f) => {
                  setSample(f);
                  if (f) setSamplePreview(URL.createObjectURL(f));
                }}
              />
              {samplePreview && <audio controls src={samplePreview} className="mt-2 w-full" data-testid="voice-preview" />}
              <span className="text-xs text-zinc-500">{t.saveFirstForVoice}</span>
            </Field>
          )}
          <section className="space-y-3 rounded-xl border border-zinc-800 p-3" data-testid="voice-section">
            <h3 className="text-xs font-semibold uppercase tracking-wide text-zinc-500">{t.voiceSection}</h3>
            <div className="grid grid-cols-1 gap-3 sm:grid-cols-2">
              <Field label={t.voiceEngine} error={errors['voice.engine']}>
                <select
                  className={inputClass}
                  value={voice.engine ?? ''}
                  onChange={(e) => setVoice({ ...voice, engine: e.target.value as Voice['engine'] })}
                  data-testid="voice-engine"
                >
                  <option value="">{t.voiceEngineDefault}</option>
                  <option value="espeak">{t.voiceEngineEspeak}</option>
                  <option value="embedded">{t.voiceEngineEmbedded}</option>
                  <option value="http">{t.voiceEngineHttp}</option>
                </select>
              </Field>
              <Field label={t.voiceLanguage} error={errors['voice.language']}>
                <select
                  className={inputClass}
                  value={voice.language ?? 'en'}
                  onChange={(e) => setVoice({ ...voice, language: e.target.value })}
                  data-testid="voice-language"
                >
                  {['en', 'de', 'fr', 'es', 'it', 'pt', 'ru', 'ja', 'ko', 'zh'].map((l) => (
                    <option key={l} value={l}>
                      {l}
                    </option>
                  ))}
                </select>
              </Field>
            </div>
            <Field label={t.voiceName} error={errors['voice.voice'] ?? errors.voice}>
              <input
                className={inputClass}
                list="voice-names"
                value={voice.voice ?? ''}
                placeholder={t.voiceNameHint}
                onChange={(e) => setVoice({ ...voice, voice: e.target.value })}
                data-testid="voice-name"
              />
              <datalist id="voice-names">
                {voiceNames.map((n) => (
                  <option key={n} value={n} />
                ))}
              </datalist>
            </Field>
            <div className="grid grid-cols-2 gap-3">
              <Field label={`${t.voiceSpeed} (${Number(voice.speed).toFixed(2)}×)`} error={errors['voice.speed']}>
                <input
                  type="range"
                  min={0.5}
                  max={2}
                  step={0.05}
                  value={voice.speed ?? 1}
                  onChange={(e) => setVoice({ ...voice, speed: Number(e.target.value) })}
                  data-testid="voice-speed"
                />
              </Field>
              <Field label={`${t.voicePitch} (${voice.pitch})`} error={errors['voice.pitch']}>
                <input
                  type="range"
                  min={0}
                  max={99}
                  step={1}
                  value={voice.pitch ?? 50}
                  onChange={(e) => setVoice({ ...voice, pitch: Number(e.target.value) })}
                  data-testid="voice-pitch"
                />
              </Field>
            </div>
            <label className="flex items-start gap-2 text-sm" title={t.voiceCloneHint}>
              <input
                type="checkbox"
                className="mt-1"
                checked={!!voice.clone}
                onChange={(e) => setVoice({ ...voice, clone: e.target.checked })}
                data-testid="voice-clone"
              />
              <span>
                {t.voiceClone}
                <span className="block text-xs text-zinc-500">{t.voiceCloneHint}</span>
              </span>
            </label>
            {errors['voice.clone'] && <p className="text-xs text-red-400" data-testid="field-error">{errors['voice.clone']}</p>}
            <button
              className="rounded-lg bg-zinc-800 px-3 py-1.5 text-sm hover:bg-zinc-700 disabled:opacity-50"
              onClick={testVoice}
              disabled={testing}
              data-testid="test-voice"
            >
              ▶ {t.testVoice}
            </button>
          </section>
          <details className="space-y-3 rounded-xl border border-zinc-800 p-3" data-testid="behaviour-section"
            open={!!(note.prompt || SAMPLER_KEYS.some((k) => samplers[k]))}>
            <summary className="cursor-pointer text-sm font-medium">{t.behaviourSection}</summary>
            <div className="mt-3 space-y-3">
              <Field label={t.characterNote} error={errors['extensions.depth_prompt.prompt']}>
                <textarea className={`${inputClass} min-h-20`} value={note.prompt} placeholder={t.characterNoteHint}
                  onChange={(e) => setNote({ ...note, prompt: e.target.value })} data-testid="note-prompt" />
              </Field>
              <Field label={t.characterNoteDepth} error={errors['extensions.depth_prompt.depth']}>
                <input className={inputClass} type="number" inputMode="numeric" min={0} max={1000} value={note.depth}
                  aria-invalid={!!errors['extensions.depth_prompt.depth']} onChange={(e) => setNote({ ...note, depth: e.target.value })} data-testid="note-depth" />
              </Field>
              <p className="text-xs text-zinc-500">{t.ownSamplersHint}</p>
              <div className="grid grid-cols-2 gap-3">
                {SAMPLER_KEYS.map((k) => (
                  <Field key={k} label={t.samplerNames[k]} error={errors[`extensions.mycandy.sampling.${k}`]}>
                    <input className={inputClass} type="number" inputMode="decimal" step={k === 'top_k' || k === 'max_tokens' ? 1 : 0.05}
                      value={samplers[k]} placeholder={t.imageFromSettings} aria-invalid={!!errors[`extensions.mycandy.sampling.${k}`]}
                      onChange={(e) => setSamplers({ ...samplers, [k]: e.target.value })} data-testid={`sampler-${k}`} />
                  </Field>
                ))}
              </div>
            </div>
          </details>
          <section className="space-y-3 rounded-xl border border-zinc-800 p-3" data-testid="image-section">
            <h3 className="text-sm font-medium">{t.imageSection}</h3>
            <p className="text-xs text-zinc-500">{t.imageSectionHint}</p>
            <div className="grid grid-cols-2 gap-3">
              {(['width', 'height', 'steps', 'seed'] as const).map((k) => (
                <Field key={k} label={{ width: t.imageWidth, height: t.imageHeight, steps: t.imageSteps, seed: t.imageSeed }[k]} error={imgError(k)}>
                  <input className={inputClass} type="number" inputMode="numeric" value={img[k]} placeholder={k === 'seed' ? t.imageSeedRandom : t.imageFromSettings}
                    aria-invalid={!!imgError(k)} onChange={(e) => setImg({ ...img, [k]: e.target.value })} data-testid={`image-${k}`} />
                </Field>
              ))}
            </div>
            <Field label={t.imageLikeness} error={imgError('likeness')}>
              <select className={inputClass} value={img.likeness} onChange={(e) => setImg({ ...img, likeness: e.target.value })} data-testid="image-likeness">
                <option value="default">{t.imageFromSettings}</option>
                <option value="on">{t.on}</option>
                <option value="off">{t.off}</option>
              </select>
            </Field>
            <div className="space-y-2">
              <span className="text-sm text-zinc-400">LoRAs</span>
              {img.loras.map((l, i) => (
                <div key={i} className="flex items-center gap-2">
                  <input className={`${inputClass} min-w-0 flex-1`} value={l.name} placeholder="my_lora.safetensors" aria-label={t.imageLoraName}
                    onChange={(e) => setImg({ ...img, loras: img.loras.map((x, j) => (j === i ? { ...x, name: e.target.value } : x)) })}
                    data-testid={`lora-name-${i}`} />
                  <input className={`${inputClass} w-20`} type="number" step="0.05" value={l.weight} aria-label={t.imageLoraWeight}
                    onChange={(e) => setImg({ ...img, loras: img.loras.map((x, j) => (j === i ? { ...x, weight: e.target.value } : x)) })}
                    data-testid={`lora-weight-${i}`} />
                  <button className="min-h-10 min-w-10 rounded-lg hover:bg-zinc-800" aria-label={t.delete}
                    onClick={() => setImg({ ...img, loras: img.loras.filter((_, j) => j !== i) })}>
                    ✕
                  </button>
                </div>
              ))}
              {(imgError('loras') || Object.keys(errors).some((k) => k.startsWith('extensions.mycandy.image.loras'))) && (
                <p className="text-xs text-red-400" data-testid="field-error">
                  {imgError('loras') ?? errors[Object.keys(errors).find((k) => k.startsWith('extensions.mycandy.image.loras'))!]}
                </p>
              )}
              {img.loras.length < 8 && (
                <button className="rounded-lg bg-zinc-800 px-3 py-1.5 text-sm hover:bg-zinc-700"
                  onClick={() => setImg({ ...img, loras: [...img.loras, { name: '', weight: '0.8' }] })} data-testid="lora-add">
                  + LoRA
                </button>
              )}
            </div>
          </section>
          {errors._form && <p className="text-sm text-red-400">{errors._form}</p>}
    </Drawer>
  );
}
