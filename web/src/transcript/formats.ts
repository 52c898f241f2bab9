// The five transcript renderings (spec §10) and how to fetch and save them. A transcript comes from
// `download_transcript` as a JSON string; one too big for a Lambda response (413) comes from a
// pre-signed URL instead (Wisp extension `GET /api/wisp/jobs/{job_id}/transcript_url`).
import { ApiError, api } from "../api/client";

export type TranscriptType = "as_txt" | "as_srt" | "as_tsv" | "as_vtt" | "as_json";

export interface Format {
  type: TranscriptType;
  extension: string;
  mime: string;
}

export const FORMATS: Format[] = [
  { type: "as_txt", extension: "txt", mime: "text/plain" },
  { type: "as_srt", extension: "srt", mime: "application/x-subrip" },
  { type: "as_vtt", extension: "vtt", mime: "text/vtt" },
  { type: "as_tsv", extension: "tsv", mime: "text/tab-separated-values" },
  { type: "as_json", extension: "json", mime: "application/json" },
];

/** `talk.final.mp3` → `talk.final.srt` (as Project-W's frontend names downloads). */
export function downloadName(fileName: string | null | undefined, jobId: number, format: Format): string {
  const base = fileName && fileName.includes(".") ? fileName.slice(0, fileName.lastIndexOf(".")) : fileName || `job-${jobId}`;
  return `${base}.${format.extension}`;
}

/** What the server has for one format: its text, or only a URL when it is too big to send inline. */
export type Fetched = { kind: "text"; text: string } | { kind: "url"; url: string };

/** The transcript in one format; marks the job downloaded (as every download does). */
export async function fetchTranscript(jobId: number, type: TranscriptType): Promise<Fetched> {
  try {
    const body: unknown = await api("get", "/api/jobs/download_transcript", { query: { job_id: jobId, transcript_type: type } });
    // as_json is the document's text inside a JSON string; accept an object as well (spec §3.5)
    return { kind: "text", text: typeof body === "string" ? body : JSON.stringify(body) };
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 413) throw error;
  }
  const { url } = await api("get", "/api/wisp/jobs/{job_id}/transcript_url", {
    params: { job_id: String(jobId) },
    query: { transcript_type: type },
  });
  return { kind: "url", url };
}

/** The text behind a pre-signed URL (the bucket must allow this origin to read; null if it does not). */
export async function readUrl(url: string): Promise<string | null> {
  try {
    const response = await fetch(url);
    return response.ok ? await response.text() : null;
  } catch {
    return null;
  }
}

/** Saves `fetched` under `name`: a text through a Blob, a URL by following it (the server names the file). */
export function save(fetched: Fetched, name: string, mime: string): void {
  const link = document.createElement("a");
  let objectUrl: string | null = null;
  if (fetched.kind === "text") {
    objectUrl = URL.createObjectURL(new Blob([fetched.text], { type: `${mime};charset=utf-8` }));
    link.href = objectUrl;
  } else {
    link.href = fetched.url;
  }
  link.download = name;
  link.rel = "noopener";
  document.body.appendChild(link);
  link.click();
  link.remove();
  if (objectUrl) {
    const url = objectUrl;
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  }
}
