// A 422 answer of submit_settings (spec §1.5) as messages at the form's fields: `loc`
// ["body", "asr_settings", "beam_size"] → field "asr_settings.beam_size". Model-level rules come
// at the object (["body"], ["body", "alignment", "processing"]); their message names the field
// ("model tiny.en only supports English; set language to 'en'"), so the first field of that
// object the message mentions gets it.

export interface Issue {
  loc: Array<string | number>;
  msg: string;
  type?: string;
}

/** Every field of the form, as dotted paths; groups are the objects that have children. */
export const FIELDS: readonly string[] = [
  "task",
  "model",
  "language",
  "alignment",
  "alignment.processing",
  "alignment.processing.highlight_words",
  "alignment.processing.max_line_count",
  "alignment.processing.max_line_width",
  "alignment.return_char_alignments",
  "alignment.interpolate_method",
  "diarization",
  "diarization.min_speakers",
  "diarization.max_speakers",
  "vad_settings",
  "vad_settings.vad_onset",
  "vad_settings.vad_offset",
  "vad_settings.chunk_size",
  "asr_settings",
  "asr_settings.beam_size",
  "asr_settings.patience",
  "asr_settings.length_penalty",
  "asr_settings.temperature",
  "asr_settings.temperature_increment_on_fallback",
  "asr_settings.compression_ratio_threshold",
  "asr_settings.log_prob_threshold",
  "asr_settings.no_speech_threshold",
  "asr_settings.initial_prompt",
  "asr_settings.suppress_tokens",
  "asr_settings.suppress_numerals",
  "email_notification",
];

const KNOWN = new Set(FIELDS);
/** objects the form shows as a whole (a switch), so a message may stay there */
const SHOWN_GROUPS = new Set(["alignment", "diarization"]);

function children(group: string): string[] {
  const prefix = group ? `${group}.` : "";
  return FIELDS.filter((f) => f.startsWith(prefix) && f !== group && !f.slice(prefix.length).includes("."));
}

function isGroup(path: string): boolean {
  return path === "" || children(path).length > 0;
}

/** The field a model-level message is about: the first of the group's fields it names. */
function mentioned(group: string, msg: string): string | null {
  let best: { at: number; field: string } | null = null;
  for (const field of children(group)) {
    const name = field.slice(field.lastIndexOf(".") + 1);
    const match = new RegExp(`(^|[^a-z_])${name}($|[^a-z_])`, "i").exec(msg);
    if (match && (best === null || match.index < best.at)) best = { at: match.index, field };
  }
  return best?.field ?? null;
}

export interface FieldErrors {
  /** messages per field path */
  fields: Record<string, string[]>;
  /** messages that belong to no field */
  general: string[];
}

export function cleanMessage(msg: string): string {
  return msg.replace(/^Value error, /, "");
}

export function fieldPath(loc: Array<string | number>): string | null {
  if (loc[0] !== "body") return null;
  let path = "";
  for (const segment of loc.slice(1)) {
    if (typeof segment === "number") continue; // an array element: the array's field
    const candidate = path ? `${path}.${segment}` : segment;
    if (KNOWN.has(candidate)) path = candidate;
    // anything else (a union member's tag) is skipped
  }
  return path;
}

export function mapIssues(issues: Issue[]): FieldErrors {
  const result: FieldErrors = { fields: {}, general: [] };
  const add = (field: string, message: string) => {
    (result.fields[field] ??= []).push(message);
  };
  for (const issue of issues) {
    const message = cleanMessage(String(issue.msg ?? ""));
    const path = fieldPath(issue.loc ?? []);
    if (path === null) {
      result.general.push(message);
      continue;
    }
    if (!isGroup(path)) {
      add(path, message);
      continue;
    }
    let target = mentioned(path, message);
    // a nested group named in the message ("alignment" in a top-level rule) is fine as it is
    if (target === null && SHOWN_GROUPS.has(path)) target = path;
    if (target !== null && isGroup(target) && !SHOWN_GROUPS.has(target)) target = mentioned(target, message) ?? null;
    if (target === null) result.general.push(message);
    else add(target, message);
  }
  return result;
}
