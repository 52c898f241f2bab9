// Drop files here: each goes straight to S3 (upload engine), one progress bar per file with
// percent, speed and time left, pause/resume/cancel; the settings for the batch above them.
import { useEffect, useRef, useState } from "preact/hooks";
import { ErrorMessage } from "../app/ErrorView";
import { useStrings } from "../i18n";
import { formatBytes, formatDuration } from "../jobs/format";
import { loadDefaultSettings, submitSettings } from "../settings/api";
import type { FieldErrors } from "../settings/errors";
import { toForm, toRequest } from "../settings/model";
import type { SettingsForm as Form } from "../settings/model";
import { hasRuleProblems, SettingsForm } from "../settings/SettingsForm";
import { rememberRecording } from "../transcript/recordings";
import { uploadApi } from "./apiClient";
import { createXhrTransport } from "./http";
import { UploadManager } from "./manager";
import type { ManagedUpload } from "./manager";

let shared: UploadManager | null = null;

/** One manager per tab: uploads keep running while the user visits other pages. */
export function uploadManager(): UploadManager {
  if (!shared) {
    shared = new UploadManager({ api: uploadApi, transport: createXhrTransport() });
    shared.subscribe(() => {
      for (const entry of shared!.items) {
        if (entry.snapshot.jobId !== null) rememberRecording(entry.snapshot.jobId, entry.upload.file as unknown as Blob);
      }
    });
    window.addEventListener("beforeunload", (event) => {
      if (shared!.items.some((e) => ["starting", "uploading", "offline", "completing"].includes(e.snapshot.phase))) {
        event.preventDefault();
        event.returnValue = "";
      }
    });
  }
  return shared;
}

function useManager(manager: UploadManager): readonly ManagedUpload[] {
  const [, setTick] = useState(0);
  useEffect(() => manager.subscribe(() => setTick((n) => n + 1)), [manager]);
  return manager.items;
}

export function UploadPanel() {
  const strings = useStrings();
  const t = strings.upload;
  const manager = uploadManager();
  const items = useManager(manager);
  const [defaults, setDefaults] = useState<Form | null>(null);
  const [form, setForm] = useState<Form | null>(null);
  const [errors, setErrors] = useState<FieldErrors | null>(null);
  const [notice, setNotice] = useState<string[]>([]);
  const [failure, setFailure] = useState<unknown>(null);
  const [dragging, setDragging] = useState(false);
  const input = useRef<HTMLInputElement>(null);

  useEffect(() => {
    loadDefaultSettings().then((s) => {
      setDefaults(toForm(s));
      setForm(toForm(s));
    }, setFailure);
  }, []);

  const addFiles = async (files: File[]) => {
    if (!files.length || !form) return;
    setNotice([]);
    setFailure(null);
    let settingsId: number | undefined;
    // unchanged defaults: the job takes the user's default record, no new record needed
    if (!defaults || JSON.stringify(toRequest(form)) !== JSON.stringify(toRequest(defaults))) {
      if (hasRuleProblems(form)) {
        setNotice([t.fixSettings]);
        return;
      }
      try {
        const result = await submitSettings(form, false);
        if (!result.ok) {
          setErrors(result.errors);
          setNotice([t.fixSettings]);
          return;
        }
        settingsId = result.id;
      } catch (error) {
        setFailure(error);
        return;
      }
    }
    setErrors(null);
    const result = manager.add(files, async () => settingsId);
    const lines: string[] = [];
    if (result.rejected.length) lines.push(t.rejected(result.rejected.map((f) => f.name).join(", ")));
    if (result.duplicates.length) lines.push(t.duplicates(result.duplicates.map((f) => f.name).join(", ")));
    setNotice(lines);
  };

  const remembered = manager.remembered();
  const running = items.some((e) => ["waiting", "starting", "uploading", "offline"].includes(e.snapshot.phase));
  const resumable = items.some((e) => ["paused", "failed"].includes(e.snapshot.phase));

  return (
    <section class="upload-panel" aria-labelledby="upload-title">
      <h2 id="upload-title">{t.title}</h2>
      <div
        class={`dropzone${dragging ? " dragging" : ""}`}
        onDragOver={(e) => { e.preventDefault(); setDragging(true); }}
        onDragLeave={() => setDragging(false)}
        onDrop={(e) => {
          e.preventDefault();
          setDragging(false);
          void addFiles([...(e.dataTransfer?.files ?? [])]);
        }}
      >
        <p>
          {t.drop}{" "}
          <button type="button" onClick={() => input.current?.click()} disabled={!form}>{t.choose}</button>
        </p>
        <input ref={input} type="file" multiple accept="audio/*,video/*" class="visually-hidden" aria-label={t.chooseLabel}
          onChange={(e) => {
            const el = e.currentTarget as HTMLInputElement;
            void addFiles([...(el.files ?? [])]);
            el.value = "";
          }} />
        <p class="hint">{t.anySize}</p>
      </div>
      <ErrorMessage error={failure} onDismiss={() => setFailure(null)} />
      {notice.map((line) => <p class="notice" role="status">{line}</p>)}

      {form && (
        <details open={errors !== null}>
          <summary>{t.settingsFor}</summary>
          {errors && errors.general.length > 0 && <div class="error" role="alert"><ul>{errors.general.map((m) => <li>{m}</li>)}</ul></div>}
          <SettingsForm idPrefix="upload-settings" value={form} onChange={setForm} errors={errors?.fields} />
        </details>
      )}

      {remembered.length > 0 && (
        <div class="remembered">
          <p>{t.remembered}</p>
          <ul>
            {remembered.map((r) => (
              <li>
                {r.fileName} ({formatBytes(r.size)}){" "}
                <button type="button" class="secondary" onClick={() => void manager.forget(r)}>{t.forget}</button>
              </li>
            ))}
          </ul>
        </div>
      )}

      {items.length > 0 && (
        <>
          <p class="actions">
            {running && <button type="button" class="secondary" onClick={() => manager.pauseAll()}>{t.pauseAll}</button>}
            {resumable && <button type="button" class="secondary" onClick={() => manager.resumeAll()}>{t.resumeAll}</button>}
            <button type="button" class="secondary" onClick={() => manager.clearFinished()}>{t.clear}</button>
          </p>
          <ul class="uploads">
            {items.map((entry) => <UploadRow entry={entry} manager={manager} />)}
          </ul>
        </>
      )}
    </section>
  );
}

function UploadRow({ entry, manager }: { entry: ManagedUpload; manager: UploadManager }) {
  const strings = useStrings();
  const t = strings.upload;
  const s = entry.snapshot;
  const pct = s.size > 0 ? Math.floor((s.bytesDone / s.size) * 100) : 0;
  const failure = s.failure;
  let failureText: string | null = null;
  if (failure?.kind === "http") failureText = failure.detail ?? strings.errors.status(failure.status);
  else if (failure?.kind === "etag") failureText = t.etag;
  else if (failure?.kind === "maybe_submitted") failureText = t.maybeSubmitted;
  else if (failure?.kind === "other") failureText = failure.message;
  return (
    <li class={`upload phase-${s.phase}`}>
      <div class="upload-head">
        <strong>{s.fileName}</strong> <span class="muted">{formatBytes(s.size)}</span>
      </div>
      <progress max={100} value={pct} aria-label={t.progressLabel(s.fileName)}>{pct} %</progress>
      <p class="upload-status" aria-live="polite">
        {t.phase[s.phase]} · {pct} %
        {s.speed !== null && <> · {t.speed(formatBytes(s.speed))}</>}
        {s.secondsLeft !== null && <> · {t.left(formatDuration(s.secondsLeft))}</>}
        {s.retrying && s.phase === "uploading" && <> · {t.retrying}</>}
        {s.resumed && <> · {t.resumed(s.size ? Math.floor((s.resumedBytes / s.size) * 100) : 0)}</>}
        {s.jobId !== null && <> · {t.jobCreated(s.jobId)}</>}
      </p>
      {failureText && <p class="field-error" role="alert">{failureText}</p>}
      <p class="actions">
        {["waiting", "starting", "uploading", "offline"].includes(s.phase) && (
          <button type="button" class="secondary" onClick={() => entry.upload.pause()}>{t.pause}</button>
        )}
        {s.phase === "paused" && <button type="button" onClick={() => manager.resume(entry)}>{t.resume}</button>}
        {s.phase === "failed" && failure?.kind !== "maybe_submitted" && (
          <button type="button" onClick={() => manager.resume(entry)}>{t.retry}</button>
        )}
        {!["done", "cancelled", "completing"].includes(s.phase) && (
          <button type="button" class="secondary" onClick={() => void entry.upload.cancel()}>{t.cancel}</button>
        )}
      </p>
    </li>
  );
}
