// Every job setting of spec §4, with errors at the field they concern: the server's 422 (mapped
// from its `loc`) and the cross-field rules checked as the user types.
import type { ComponentChildren } from "preact";
import { useStrings } from "../i18n";
import { checkRules, INTERPOLATE_METHODS, LANGUAGES, MODELS } from "./model";
import type { InterpolateMethod, Model, SettingsForm as Form, Task } from "./model";

export interface SettingsFormProps {
  value: Form;
  onChange: (next: Form) => void;
  /** messages per field path from the server's last answer */
  errors?: Record<string, string[]>;
  /** a prefix for element ids (two forms on one page) */
  idPrefix?: string;
  disabled?: boolean;
}

type Path = string;

function get(form: Form, path: Path): unknown {
  return path.split(".").reduce<unknown>((node, key) => (node as Record<string, unknown>)[key], form);
}

function set(form: Form, path: Path, value: unknown): Form {
  const keys = path.split(".");
  const copy = structuredClone(form) as unknown as Record<string, unknown>;
  let node = copy;
  for (const key of keys.slice(0, -1)) node = node[key] as Record<string, unknown>;
  node[keys[keys.length - 1]] = value;
  return copy as unknown as Form;
}

export function SettingsForm(props: SettingsFormProps) {
  const strings = useStrings();
  const t = strings.settings;
  const { value, onChange } = props;
  const prefix = props.idPrefix ?? "settings";
  const rules = checkRules(value);
  const messages = (path: Path): string[] => [
    ...(rules[path] ? [t.rules[rules[path]]] : []),
    ...(props.errors?.[path] ?? []),
  ];
  const id = (path: Path) => `${prefix}-${path.replace(/\./g, "-")}`;
  const update = (path: Path, v: unknown) => onChange(set(value, path, v));

  // a plain function, not a component: a component made anew on each render would remount its
  // input on every keystroke (and lose the focus)
  const field = (p: { path: Path; label: string; hint?: string; children: ComponentChildren }) => {
    const errs = messages(p.path);
    return (
      <div class={`field${errs.length ? " invalid" : ""}`}>
        <label for={id(p.path)}>{p.label}</label>
        {p.children}
        {p.hint && <p class="hint" id={`${id(p.path)}-hint`}>{p.hint}</p>}
        {errs.map((m, i) => <p class="field-error" id={i === 0 ? `${id(p.path)}-error` : undefined} role="alert">{m}</p>)}
      </div>
    );
  };
  const aria = (path: Path) => {
    const errs = messages(path).length > 0;
    return { id: id(path), "aria-invalid": errs ? ("true" as const) : undefined, "aria-describedby": errs ? `${id(path)}-error` : undefined, disabled: props.disabled };
  };
  const text = (path: Path, label: string, inputMode: "decimal" | "numeric" | "text" = "decimal", hint?: string) =>
    field({ path, label, hint, children: (
      <input type="text" inputMode={inputMode} value={get(value, path) as string}
        onInput={(e) => update(path, (e.currentTarget as HTMLInputElement).value)} {...aria(path)} />
    ) });
  const check = (path: Path, label: string) => {
    const errs = messages(path);
    return (
      <div class={`field check${errs.length ? " invalid" : ""}`}>
        <label>
          <input type="checkbox" checked={get(value, path) as boolean}
            onChange={(e) => update(path, (e.currentTarget as HTMLInputElement).checked)} {...aria(path)} /> {label}
        </label>
        {errs.map((m, i) => <p class="field-error" id={i === 0 ? `${id(path)}-error` : undefined} role="alert">{m}</p>)}
      </div>
    );
  };

  return (
    <div class="settings-form">
      <fieldset>
        <legend>{t.basics}</legend>
        {field({ path: "task", label: t.task, children: (<>
          <select value={value.task} onChange={(e) => update("task", (e.currentTarget as HTMLSelectElement).value as Task)} {...aria("task")}>
            <option value="transcribe">{t.taskTranscribe}</option>
            <option value="translate">{t.taskTranslate}</option>
          </select>
        </>) })}
        {field({ path: "model", label: t.model, hint: t.modelHint, children: (<>
          <select value={value.model} onChange={(e) => update("model", (e.currentTarget as HTMLSelectElement).value as Model)} {...aria("model")}>
            {MODELS.map((m) => <option value={m}>{m}</option>)}
          </select>
        </>) })}
        {field({ path: "language", label: t.language, children: (<>
          <select value={value.language} onChange={(e) => update("language", (e.currentTarget as HTMLSelectElement).value)} {...aria("language")}>
            <option value="">{t.detect}</option>
            {LANGUAGES.map((code) => <option value={code}>{languageName(code)}</option>)}
          </select>
        </>) })}
        {check("email_notification", t.emailNotification)}
      </fieldset>

      <fieldset>
        <legend>{t.alignment}</legend>
        {check("alignmentOn", t.alignmentOn)}
        {messages("alignment").map((m) => <p class="field-error" role="alert">{m}</p>)}
        {value.alignmentOn && (
          <>
            {check("alignment.processing.highlight_words", t.highlightWords)}
            {text("alignment.processing.max_line_count", `${t.maxLineCount} (${t.optional})`, "numeric")}
            {text("alignment.processing.max_line_width", `${t.maxLineWidth} (${t.optional})`, "numeric")}
            {check("alignment.return_char_alignments", t.returnCharAlignments)}
            {field({ path: "alignment.interpolate_method", label: t.interpolateMethod, children: (<>
              <select value={value.alignment.interpolate_method}
                onChange={(e) => update("alignment.interpolate_method", (e.currentTarget as HTMLSelectElement).value as InterpolateMethod)}
                {...aria("alignment.interpolate_method")}>
                {INTERPOLATE_METHODS.map((m) => <option value={m}>{t.interpolate[m]}</option>)}
              </select>
            </>) })}
          </>
        )}
      </fieldset>

      <fieldset>
        <legend>{t.diarization}</legend>
        {check("diarizationOn", t.diarizationOn)}
        {messages("diarization").map((m) => <p class="field-error" role="alert">{m}</p>)}
        {value.diarizationOn && (
          <>
            {text("diarization.min_speakers", `${t.minSpeakers} (${t.optional})`, "numeric")}
            {text("diarization.max_speakers", `${t.maxSpeakers} (${t.optional})`, "numeric")}
          </>
        )}
      </fieldset>

      <details open={Object.keys(props.errors ?? {}).some((k) => k.startsWith("vad_settings") || k.startsWith("asr_settings"))}>
        <summary>{t.advanced}</summary>
        <fieldset>
          {text("vad_settings.vad_onset", t.vadOnset)}
          {text("vad_settings.vad_offset", t.vadOffset)}
          {text("vad_settings.chunk_size", t.chunkSize, "numeric")}
          {text("asr_settings.beam_size", t.beamSize, "numeric")}
          {text("asr_settings.patience", t.patience)}
          {text("asr_settings.length_penalty", t.lengthPenalty)}
          {text("asr_settings.temperature", t.temperature)}
          {text("asr_settings.temperature_increment_on_fallback", t.temperatureIncrement)}
          {text("asr_settings.compression_ratio_threshold", t.compressionRatio)}
          {text("asr_settings.log_prob_threshold", t.logProb)}
          {text("asr_settings.no_speech_threshold", t.noSpeech)}
          {field({ path: "asr_settings.initial_prompt", label: t.initialPrompt, children: (<>
            <textarea rows={3} maxLength={2000} value={value.asr_settings.initial_prompt}
              onInput={(e) => update("asr_settings.initial_prompt", (e.currentTarget as HTMLTextAreaElement).value)}
              {...aria("asr_settings.initial_prompt")} />
          </>) })}
          {text("asr_settings.suppress_tokens", t.suppressTokens, "text")}
          {check("asr_settings.suppress_numerals", t.suppressNumerals)}
        </fieldset>
      </details>
    </div>
  );
}

function languageName(code: string): string {
  try {
    const names = new Intl.DisplayNames([typeof navigator !== "undefined" ? navigator.language : "en"], { type: "language" });
    const name = names.of(code);
    return name && name !== code ? `${name} (${code})` : code;
  } catch {
    return code;
  }
}

/** True when the form has problems the server would refuse (checked before sending). */
export function hasRuleProblems(form: Form): boolean {
  return Object.keys(checkRules(form)).length > 0;
}
