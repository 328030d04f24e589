// CharacterEditor: every character field of the API; avatar upload with preview; voice-sample
// upload with playback; the server's validation errors shown at the field.
import { useState } from 'react';
import { ApiError, api, type Character } from '../api/client';
import { format, useT } from '../i18n';
import { Drawer } from './Drawer';
import { Field, inputClass } from './Field';

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
  const [samplePreview, setSamplePreview] = useState<string | null>(character?.voice_sample_url ?? null);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);

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
    };
    try {
      let saved = character ? await api.updateCharacter(character.id, body) : await api.createCharacter(body);
      try {
        if (avatar) saved = await api.uploadAvatar(saved.id, avatar);
      } catch (e) {
        if (e instanceof ApiError) {
          setErrors({ avatar: e.message });
          return;
        }
        throw e;
      }
      try {
        if (sample) saved = await api.uploadVoiceSample(saved.id, sample);
      } catch (e) {
        if (e instanceof ApiError) {
          setErrors({ voice_sample: e.message });
          return;
        }
        throw e;
      }
      onSaved(saved);
    } catch (e) {
      if (e instanceof ApiError) setErrors({ [e.field ?? '_form']: e.message });
      else setErrors({ _form: String(e) });
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
            className="rounded-lg bg-pink-600 px-4 py-2 text-sm font-medium hover:bg-pink-500 disabled:opacity-50"
            onClick={save}
            disabled={busy}
            data-testid="save-character"
          >
            {t.save}
          </button>
        </>
      }
    >
          <div className="flex items-center gap-4">
            <div className="h-24 w-24 shrink-0 overflow-hidden rounded-full bg-zinc-800">
              {avatarPreview && <img src={avatarPreview} alt="" className="h-full w-full object-cover" data-testid="avatar-preview" />}
            </div>
            <Field label={t.avatar} error={errors.avatar}>
              <input
                type="file"
                accept="image/png,image/jpeg,image/webp"
                className="text-sm"
                data-testid="avatar-input"
                onChange={(e) => {
                  const f = e.target.files?.[0] ?? null;
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
          <Field label={t.voiceSample} error={errors.voice_sample}>
            <input
              type="file"
              accept="audio/wav,audio/mpeg,audio/flac,audio/ogg,.wav,.mp3,.flac,.ogg"
              className="text-sm"
              data-testid="voice-input"
              onChange={(e) => {
                const f = e.target.files?.[0] ?? null;
                setSample(f);
                if (f) setSamplePreview(URL.createObjectURL(f));
              }}
            />
            {samplePreview && <audio controls src={samplePreview} className="mt-2 w-full" data-testid="voice-preview" />}
            {character && (
              <span className="text-xs text-zinc-500">
                {format(t.voiceStatus, { status: character.voice_status })}
                {character.voice_error && ` — ${character.voice_error}`}
              </span>
            )}
          </Field>
          {errors._form && <p className="text-sm text-red-400">{errors._form}</p>}
    </Drawer>
  );
}
