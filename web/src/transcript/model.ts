// The transcript as the viewer sees it: segments with their words, read from the `as_json`
// rendering (spec §10): {language, segments: [{start, end, text, speaker?, words?: [{word, start?,
// end?, score?, speaker?}]}]}. Words exist only when the job was aligned; an aligned word may lack
// times (digits and symbols the aligner cannot place), and then it borrows its neighbours'.

export interface Word {
  text: string;
  start: number;
  end: number;
  /** the aligner placed this word itself (false: times borrowed from its neighbours) */
  timed: boolean;
}

export interface Segment {
  index: number;
  start: number;
  end: number;
  text: string;
  speaker: string | null;
  /** empty when the job was not aligned */
  words: Word[];
}

export interface Transcript {
  language: string | null;
  segments: Segment[];
  /** at least one segment has word timings */
  aligned: boolean;
}

function num(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

function str(value: unknown): string | null {
  return typeof value === "string" ? value : null;
}

function readWords(raw: unknown, segStart: number, segEnd: number): Word[] {
  if (!Array.isArray(raw)) return [];
  const words = raw
    .filter((w): w is Record<string, unknown> => !!w && typeof w === "object" && typeof (w as { word?: unknown }).word === "string")
    .map((w) => ({ text: String(w.word), start: num(w.start), end: num(w.end) }));
  // untimed words start where the previous word ended and end where the next one starts
  const out: Word[] = [];
  let previousEnd = segStart;
  words.forEach((w, i) => {
    if (w.start !== null && w.end !== null) {
      out.push({ text: w.text, start: w.start, end: w.end, timed: true });
      previousEnd = w.end;
      return;
    }
    const next = words.slice(i + 1).find((n) => n.start !== null);
    const end = next?.start ?? segEnd;
    out.push({ text: w.text, start: previousEnd, end: Math.max(previousEnd, end), timed: false });
  });
  return out;
}

/** Reads `as_json` (a parsed object or its text); throws if it is not a transcript. */
export function parseTranscript(raw: unknown): Transcript {
  const data: unknown = typeof raw === "string" ? JSON.parse(raw) : raw;
  if (!data || typeof data !== "object" || !Array.isArray((data as { segments?: unknown }).segments)) {
    throw new Error("not a transcript: no segments");
  }
  const object = data as { language?: unknown; segments: unknown[] };
  const segments: Segment[] = [];
  for (const item of object.segments) {
    if (!item || typeof item !== "object") continue;
    const s = item as Record<string, unknown>;
    const start = num(s.start) ?? (segments.at(-1)?.end ?? 0);
    const end = Math.max(start, num(s.end) ?? start);
    const text = (str(s.text) ?? "").trim();
    segments.push({ index: segments.length, start, end, text, speaker: str(s.speaker), words: readWords(s.words, start, end) });
  }
  return { language: str(object.language), segments, aligned: segments.some((s) => s.words.length > 0) };
}

/** `75.25` → `1:15`, `3725` → `1:02:05` (what a person reads beside a segment). */
export function formatTime(seconds: number): string {
  const total = Math.max(0, Math.floor(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const mm = h > 0 ? String(m).padStart(2, "0") : String(m);
  return `${h > 0 ? `${h}:` : ""}${mm}:${String(s).padStart(2, "0")}`;
}

/** A word or segment position: segment index and word index (-1: the segment as a whole). */
export interface Position {
  segment: number;
  word: number;
}

/** Where the recording is at `time`: the word being spoken, else the segment; null between segments. */
export function positionAt(transcript: Transcript, time: number): Position | null {
  const segments = transcript.segments;
  // the last segment that starts at or before `time` (segments are in time order)
  let lo = 0;
  let hi = segments.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (segments[mid].start <= time) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  if (found < 0 || time > segments[found].end) return null;
  const words = segments[found].words;
  let word = -1;
  for (let i = 0; i < words.length; i++) {
    if (words[i].start > time) break;
    if (time <= words[i].end || (i + 1 < words.length && time < words[i + 1].start)) word = i;
  }
  return { segment: found, word };
}

/** Segments whose text contains `query` (case- and accent-insensitive), in order. */
export function searchSegments(transcript: Transcript, query: string): number[] {
  const needle = fold(query.trim());
  if (!needle) return [];
  return transcript.segments.filter((s) => fold(displayText(s)).includes(needle)).map((s) => s.index);
}

/** The text shown for a segment: its words when aligned (each one clickable), else its text. */
export function displayText(segment: Segment): string {
  return segment.words.length ? segment.words.map((w) => w.text.trim()).join(" ") : segment.text;
}

/** Lower case without accents: "Éte" and "ete" match. */
export function fold(text: string): string {
  return text.normalize("NFD").replace(/\p{M}/gu, "").toLowerCase();
}

/** Where `query` occurs in `text` (folded as in search): [from, to) character ranges of `text`. */
export function matchRanges(text: string, query: string): [number, number][] {
  const needle = fold(query.trim());
  if (!needle) return [];
  // folding can change lengths (é → e plus a mark that is dropped): map folded offsets back
  const map: number[] = [];
  let folded = "";
  for (let i = 0; i < text.length; i++) {
    const piece = fold(text[i]);
    for (let k = 0; k < piece.length; k++) map.push(i);
    folded += piece;
  }
  const ranges: [number, number][] = [];
  let at = folded.indexOf(needle);
  while (at >= 0) {
    ranges.push([map[at], map[at + needle.length - 1] + 1]);
    at = folded.indexOf(needle, at + needle.length);
  }
  return ranges;
}

/** Splits `text` into plain and matching parts for highlighting. */
export function markMatches(text: string, query: string): { text: string; match: boolean }[] {
  const parts: { text: string; match: boolean }[] = [];
  let cursor = 0;
  for (const [from, to] of matchRanges(text, query)) {
    if (from > cursor) parts.push({ text: text.slice(cursor, from), match: false });
    parts.push({ text: text.slice(from, to), match: true });
    cursor = to;
  }
  if (cursor < text.length || parts.length === 0) parts.push({ text: text.slice(cursor), match: false });
  return parts;
}

/** The words of a segment joined as shown, and which of them overlap a match of `query`. */
export function matchedWords(words: Word[], query: string): boolean[] {
  const offsets: number[] = [];
  let joined = "";
  for (const word of words) {
    if (joined) joined += " ";
    offsets.push(joined.length);
    joined += word.text.trim();
  }
  const ranges = matchRanges(joined, query);
  return words.map((word, i) => {
    const from = offsets[i];
    const to = from + word.text.trim().length;
    return ranges.some(([a, b]) => a < to && b > from);
  });
}

/** The plain text a person copies: one segment per line, with speakers when there are any. */
export function plainText(transcript: Transcript): string {
  return transcript.segments.map((s) => (s.speaker ? `[${s.speaker}]: ${s.text}` : s.text)).join("\n");
}
