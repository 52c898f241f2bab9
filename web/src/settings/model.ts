// Job settings (spec §4): the types, the application defaults, the form's editable state and the
// conversion between the two, and the cross-field rules checked before sending.

import type { components } from "../api/schema";

// The types come from the generated client (Wisp's /openapi.json): one definition, checked for
// drift by tests/web/test_api_client.py.
type Schemas = components["schemas"];
export type JobSettings = Schemas["JobSettingsResponse"];
export type Task = Schemas["TaskEnum"];
export type Model = Schemas["JobModelEnum"];
export type Language = Schemas["JobLangEnum"];
export type AlignmentSettings = Schemas["AlignmentSettings"];
export type AlignmentProcessing = AlignmentSettings["processing"];
export type InterpolateMethod = AlignmentSettings["interpolate_method"];
export type DiarizationSettings = Schemas["DiarizationSettings"];
export type VadSettings = Schemas["VadSettings"];
export type AsrSettings = Schemas["AsrSettings"];

/** Compile-time check that a list names every member of a union, and nothing else. */
type Exactly<List extends readonly string[], Union extends string> =
  [Exclude<Union, List[number]>] extends [never] ? ([Exclude<List[number], Union>] extends [never] ? List : never) : never;
function every<Union extends string>() {
  return <const List extends readonly Union[]>(list: Exactly<List, Union>): readonly Union[] => list;
}

export const MODELS: readonly Model[] = every<Model>()(["tiny", "tiny.en", "base", "base.en", "small", "small.en", "medium", "medium.en", "turbo", "large"]);
export const ENGLISH_ONLY: ReadonlySet<string> = new Set(["tiny.en", "base.en", "small.en", "medium.en"]);
export const INTERPOLATE_METHODS: readonly InterpolateMethod[] = every<InterpolateMethod>()(["nearest", "linear", "ignore"]);

export const LANGUAGES: readonly Language[] = every<Language>()([
  "af", "am", "ar", "as", "az", "ba", "be", "bg", "bn", "bo", "br", "bs", "ca", "cs", "cy", "da",
  "de", "el", "en", "es", "et", "eu", "fa", "fi", "fo", "fr", "gl", "gu", "ha", "haw", "he", "hi",
  "hr", "ht", "hu", "hy", "id", "is", "it", "ja", "jw", "ka", "kk", "km", "kn", "ko", "la", "lb",
  "ln", "lo", "lt", "lv", "mg", "mi", "mk", "ml", "mn", "mr", "ms", "mt", "my", "ne", "nl", "nn",
  "no", "oc", "pa", "pl", "ps", "pt", "ro", "ru", "sa", "sd", "si", "sk", "sl", "sn", "so", "sq",
  "sr", "su", "sv", "sw", "ta", "te", "tg", "th", "tk", "tl", "tr", "tt", "uk", "ur", "uz", "vi",
  "yi", "yo", "yue", "zh"
]);

export const ALIGNMENT_LANGUAGES: ReadonlySet<string> = new Set(
  ("en fr de es it ja zh nl uk pt ar cs ru pl hu fi fa el tr da he vi ko ur te hi ca ml no nn sk sl " +
    "hr ro eu gl ka lv tl sv").split(" "),
);

export function defaultAlignment(): AlignmentSettings {
  return {
    processing: { highlight_words: false, max_line_count: null, max_line_width: null },
    return_char_alignments: false,
    interpolate_method: "nearest",
  };
}

/** What GET /api/jobs/default_settings answers for a user without defaults. */
export function applicationDefaults(): JobSettings {
  return {
    task: "transcribe",
    model: "large",
    language: null,
    alignment: defaultAlignment(),
    diarization: null,
    vad_settings: { vad_onset: 0.5, vad_offset: 0.363, chunk_size: 30 },
    asr_settings: {
      beam_size: 5,
      patience: 1.0,
      length_penalty: 1.0,
      temperature: 0.0,
      temperature_increment_on_fallback: 0.2,
      compression_ratio_threshold: 2.4,
      log_prob_threshold: -1.0,
      no_speech_threshold: 0.6,
      initial_prompt: null,
      suppress_tokens: [-1],
      suppress_numerals: false,
    },
    email_notification: false,
  };
}

// ------------------------------------------------------------------------------------------
// The form: numbers are kept as typed (strings) so that a half-typed or wrong value reaches the
// server as it is and comes back as a 422 at its field; switched-off sections keep their values.
// ------------------------------------------------------------------------------------------

export type NumberFields<T> = { [K in keyof T]: T[K] extends number | null ? string : T[K] };

export interface SettingsForm {
  task: Task;
  model: Model;
  /** "" = detect */
  language: string;
  alignmentOn: boolean;
  alignment: {
    processing: NumberFields<AlignmentProcessing>;
    return_char_alignments: boolean;
    interpolate_method: InterpolateMethod;
  };
  diarizationOn: boolean;
  diarization: NumberFields<DiarizationSettings>;
  vad_settings: NumberFields<VadSettings>;
  asr_settings: Omit<NumberFields<AsrSettings>, "initial_prompt" | "suppress_tokens"> & {
    initial_prompt: string;
    /** comma-separated token ids */
    suppress_tokens: string;
  };
  email_notification: boolean;
}

const num = (value: number | null): string => (value === null ? "" : String(value));

export function toForm(settings: JobSettings): SettingsForm {
  const alignment = settings.alignment ?? defaultAlignment();
  const diarization = settings.diarization ?? { min_speakers: null, max_speakers: null };
  const vad = settings.vad_settings;
  const asr = settings.asr_settings;
  return {
    task: settings.task,
    model: settings.model,
    language: settings.language ?? "",
    alignmentOn: settings.alignment !== null,
    alignment: {
      processing: {
        highlight_words: alignment.processing.highlight_words,
        max_line_count: num(alignment.processing.max_line_count),
        max_line_width: num(alignment.processing.max_line_width),
      },
      return_char_alignments: alignment.return_char_alignments,
      interpolate_method: alignment.interpolate_method,
    },
    diarizationOn: settings.diarization !== null,
    diarization: { min_speakers: num(diarization.min_speakers), max_speakers: num(diarization.max_speakers) },
    vad_settings: { vad_onset: num(vad.vad_onset), vad_offset: num(vad.vad_offset), chunk_size: num(vad.chunk_size) },
    asr_settings: {
      beam_size: num(asr.beam_size),
      patience: num(asr.patience),
      length_penalty: num(asr.length_penalty),
      temperature: num(asr.temperature),
      temperature_increment_on_fallback: num(asr.temperature_increment_on_fallback),
      compression_ratio_threshold: num(asr.compression_ratio_threshold),
      log_prob_threshold: num(asr.log_prob_threshold),
      no_speech_threshold: num(asr.no_speech_threshold),
      initial_prompt: asr.initial_prompt ?? "",
      suppress_tokens: asr.suppress_tokens.join(", "),
      suppress_numerals: asr.suppress_numerals,
    },
    email_notification: settings.email_notification,
  };
}

/** A number where the text is one; otherwise the text itself, for the server to name the field. */
function parseNumber(text: string): number | string {
  const trimmed = text.trim();
  if (trimmed === "") return trimmed;
  const value = Number(trimmed.replace(",", "."));
  return Number.isFinite(value) ? value : trimmed;
}

function parseOptional(text: string): number | string | null {
  return text.trim() === "" ? null : parseNumber(text);
}

function parseTokens(text: string): Array<number | string> {
  return text
    .split(/[\s,;]+/)
    .filter(Boolean)
    .map((t) => parseNumber(t));
}

/** The JobSettingsRequest body for the form (every key sent, as the form shows it). */
export function toRequest(form: SettingsForm): Record<string, unknown> {
  const a = form.alignment;
  const d = form.diarization;
  const v = form.vad_settings;
  const s = form.asr_settings;
  return {
    task: form.task,
    model: form.model,
    language: form.language === "" ? null : form.language,
    alignment: form.alignmentOn
      ? {
          processing: {
            highlight_words: a.processing.highlight_words,
            max_line_count: parseOptional(a.processing.max_line_count),
            max_line_width: parseOptional(a.processing.max_line_width),
          },
          return_char_alignments: a.return_char_alignments,
          interpolate_method: a.interpolate_method,
        }
      : null,
    diarization: form.diarizationOn
      ? { min_speakers: parseOptional(d.min_speakers), max_speakers: parseOptional(d.max_speakers) }
      : null,
    vad_settings: { vad_onset: parseNumber(v.vad_onset), vad_offset: parseNumber(v.vad_offset), chunk_size: parseNumber(v.chunk_size) },
    asr_settings: {
      beam_size: parseNumber(s.beam_size),
      patience: parseNumber(s.patience),
      length_penalty: parseNumber(s.length_penalty),
      temperature: parseNumber(s.temperature),
      temperature_increment_on_fallback: parseNumber(s.temperature_increment_on_fallback),
      compression_ratio_threshold: parseNumber(s.compression_ratio_threshold),
      log_prob_threshold: parseNumber(s.log_prob_threshold),
      no_speech_threshold: parseNumber(s.no_speech_threshold),
      initial_prompt: s.initial_prompt === "" ? null : s.initial_prompt,
      suppress_tokens: parseTokens(s.suppress_tokens),
      suppress_numerals: s.suppress_numerals,
    },
    email_notification: form.email_notification,
  };
}

/** The cross-field rules of spec §4, as problems keyed by the field to fix (message keys). */
export type RuleProblem = "englishOnlyModel" | "translateNoAlignment" | "alignmentLanguage" | "translateEnglish" | "lineCountNeedsWidth" | "maxBelowMin";

export function checkRules(form: SettingsForm): Record<string, RuleProblem> {
  const problems: Record<string, RuleProblem> = {};
  const language = form.language || null;
  if (ENGLISH_ONLY.has(form.model) && language !== "en") problems.language = "englishOnlyModel";
  if (form.task === "translate" && form.alignmentOn) problems.alignment = "translateNoAlignment";
  else if (form.alignmentOn && language !== null && !ALIGNMENT_LANGUAGES.has(language)) problems.alignment = "alignmentLanguage";
  if (form.task === "translate" && language === "en") problems.task = "translateEnglish";
  if (form.alignmentOn && form.alignment.processing.max_line_count.trim() !== "" &&
      form.alignment.processing.max_line_width.trim() === "") {
    problems["alignment.processing.max_line_count"] = "lineCountNeedsWidth";
  }
  const min = Number(form.diarization.min_speakers);
  const max = Number(form.diarization.max_speakers);
  if (form.diarizationOn && form.diarization.min_speakers.trim() !== "" && form.diarization.max_speakers.trim() !== "" &&
      Number.isFinite(min) && Number.isFinite(max) && max < min) {
    problems["diarization.max_speakers"] = "maxBelowMin";
  }
  return problems;
}
