// Recordings this tab still holds, by job id, so the transcript page can play a job's audio in sync
// without downloading it again (Wisp never sends the audio back to users).
//
// Filled by the upload (web/src/upload) as soon as a job id exists for a file, and by the
// transcript page when the user opens the file again. In memory only: a File from an <input> or a
// drop stays readable for as long as the tab lives, and nothing of it reaches storage.

type Listener = (jobId: number) => void;

const recordings = new Map<number, Blob>();
const listeners = new Set<Listener>();

/** Keep `file` as the recording of `jobId` for this tab's lifetime (replaces an earlier one). */
export function rememberRecording(jobId: number, file: Blob): void {
  if (recordings.get(jobId) === file) return; // known already: nothing changed, nobody to tell
  recordings.set(jobId, file);
  for (const listener of listeners) listener(jobId);
}

/** The recording of `jobId`, if this tab has it. */
export function recordingFor(jobId: number): Blob | undefined {
  return recordings.get(jobId);
}

/** Drop the recording (the job was deleted). */
export function forgetRecording(jobId: number): void {
  if (recordings.delete(jobId)) for (const listener of listeners) listener(jobId);
}

/** Called with the job id whenever a recording arrives or goes; returns the unsubscribe function. */
export function onRecordingsChange(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}
