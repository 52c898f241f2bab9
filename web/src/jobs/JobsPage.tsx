// The start page: the upload panel, then the user's jobs, live through /api/jobs/events, with
// filter, sort, pages, bulk abort/delete, and each job's state, settings, runner and errors in words.
import { useEffect, useMemo, useState } from "preact/hooks";
import "./jobs.css";
import { ErrorMessage } from "../app/ErrorView";
import { Link } from "../app/router";
import { useStrings } from "../i18n";
import type { Catalogue } from "../i18n";
import { transcriptPath } from "../transcript/routes";
import { forgetRecording } from "../transcript/recordings";
import { UploadPanel, uploadManager } from "../upload/UploadPanel";
import { jobsApi } from "./api";
import { JobEvents } from "./events";
import type { StreamStatus } from "./events";
import { formatTime } from "./format";
import { canAbort, hasTranscript, isFinished, STATUS_FILTERS } from "./status";
import type { StatusFilter } from "./status";
import { JobStore } from "./store";
import type { JobInfo, JobsState, SortKey } from "./store";

function useJobs() {
  const store = useMemo(() => new JobStore(jobsApi), []);
  const [state, setState] = useState<JobsState>(store.snapshot);
  const [stream, setStream] = useState<StreamStatus>("connecting");
  useEffect(() => {
    const unsubscribe = store.subscribe(setState);
    void store.load();
    const events = new JobEvents({
      onEvent: (event) => {
        if (event.type === "job_deleted") forgetRecording(event.jobId);
        store.handle(event);
      },
      onResync: () => store.scheduleReload(),
      onStatus: setStream,
    });
    events.start();
    const online = () => events.reconnect();
    window.addEventListener("online", online);
    // a job this tab's upload just created: ask for the events now, not after the stream's idle
    // retry (30 s), so that the new job and its progress show at once
    const uploads = uploadManager();
    const created = new Set(uploads.items.map((e) => e.snapshot.jobId));
    const unsubscribeUploads = uploads.subscribe(() => {
      for (const entry of uploads.items) {
        const jobId = entry.snapshot.jobId;
        if (jobId !== null && !created.has(jobId)) {
          created.add(jobId);
          events.reconnect();
        }
      }
    });
    return () => {
      unsubscribeUploads();
      window.removeEventListener("online", online);
      events.stop();
      unsubscribe();
      store.dispose();
    };
  }, [store]);
  return { store, state, stream };
}

export default function JobsPage() {
  const strings = useStrings();
  const t = strings.jobs;
  const { store, state, stream } = useJobs();
  const [actionError, setActionError] = useState<unknown>(null);
  const [actionNote, setActionNote] = useState<string | null>(null);
  const [open, setOpen] = useState<ReadonlySet<number>>(new Set());
  const { query } = state;
  const pages = Math.max(1, Math.ceil(state.total / query.pageSize));
  const selected = state.selected.size;

  const bulk = async (kind: "abort" | "delete") => {
    const n = state.selected.size;
    if (!window.confirm(kind === "abort" ? t.confirmAbort(n) : t.confirmDelete(n))) return;
    setActionError(null);
    try {
      const result = kind === "abort" ? await store.abort() : await store.remove();
      if (kind === "delete") result.done.forEach(forgetRecording);
      setActionNote(t.bulkDone(kind === "abort" ? t.aborted : t.deleted, result.done.length, result.skipped.length));
    } catch (error) {
      setActionError(error);
    }
  };

  return (
    <>
      <UploadPanel />
      <section aria-labelledby="jobs-title">
        <h1 id="jobs-title">{t.title}</h1>
        <p class="muted" role="status">
          {stream === "live" ? t.live : stream === "reconnecting" ? t.reconnecting : t.connecting}
        </p>
        <form class="job-filters" onSubmit={(e) => e.preventDefault()}>
          <label>
            {t.filterStatus}{" "}
            <select value={query.status} onChange={(e) => void store.setQuery({ status: (e.currentTarget as HTMLSelectElement).value as StatusFilter })}>
              {STATUS_FILTERS.map((f) => <option value={f}>{t.status[f]}</option>)}
            </select>
          </label>
          <label>
            {t.search}{" "}
            <input type="search" value={query.text} onInput={(e) => void store.setQuery({ text: (e.currentTarget as HTMLInputElement).value })} />
          </label>
          <label>
            {t.sortBy}{" "}
            <select value={query.sortKey} onChange={(e) => void store.setQuery({ sortKey: (e.currentTarget as HTMLSelectElement).value as SortKey })}>
              <option value="creation_time">{t.sortCreation}</option>
              <option value="filename">{t.sortName}</option>
            </select>
          </label>
          <label>
            <select aria-label={t.sortBy} value={query.descending ? "desc" : "asc"}
              onChange={(e) => void store.setQuery({ descending: (e.currentTarget as HTMLSelectElement).value === "desc" })}>
              <option value="desc">{t.newestFirst}</option>
              <option value="asc">{t.oldestFirst}</option>
            </select>
          </label>
          <label>
            {t.pageSize}{" "}
            <select value={String(query.pageSize)} onChange={(e) => void store.setQuery({ pageSize: Number((e.currentTarget as HTMLSelectElement).value) })}>
              {[10, 20, 50, 100].map((n) => <option value={String(n)}>{n}</option>)}
            </select>
          </label>
        </form>

        <ErrorMessage error={state.error} onRetry={() => void store.load()} />
        <ErrorMessage error={actionError} onDismiss={() => setActionError(null)} />
        {actionNote && <p class="notice" role="status">{actionNote}</p>}

        <p class="actions">
          <label>
            <input type="checkbox" checked={state.jobs.length > 0 && selected === state.jobs.length}
              onChange={(e) => store.selectAll((e.currentTarget as HTMLInputElement).checked)} /> {t.selectAll}
          </label>
          <span>{t.selected(selected)}</span>
          <button type="button" class="secondary" disabled={!state.jobs.some((j) => state.selected.has(j.id) && canAbort(j.step))}
            onClick={() => void bulk("abort")}>{t.abortSelected}</button>
          <button type="button" class="secondary" disabled={!state.jobs.some((j) => state.selected.has(j.id) && isFinished(j.step))}
            onClick={() => void bulk("delete")}>{t.deleteSelected}</button>
        </p>

        {state.jobs.length === 0 && !state.loading && !state.error && (
          <p>{query.status === "all" && !query.text ? t.empty : t.noMatch}</p>
        )}
        <ul class="jobs">
          {state.jobs.map((job) => (
            <JobRow job={job} strings={strings} selected={state.selected.has(job.id)} open={open.has(job.id)}
              onSelect={(on) => store.toggle(job.id, on)}
              onToggleOpen={() => setOpen((prev) => {
                const next = new Set(prev);
                if (!next.delete(job.id)) next.add(job.id);
                return next;
              })}
              onAbort={async () => {
                try { await store.abort([job.id]); } catch (error) { setActionError(error); }
              }}
              onDelete={async () => {
                if (!window.confirm(t.confirmDelete(1))) return;
                try { await store.remove([job.id]); forgetRecording(job.id); } catch (error) { setActionError(error); }
              }} />
          ))}
        </ul>

        <nav class="pager actions" aria-label={t.page(query.page + 1, pages)}>
          <span>{t.count(state.total)} · {t.page(query.page + 1, pages)}</span>
          <button type="button" class="secondary" disabled={query.page === 0} onClick={() => void store.setQuery({ page: query.page - 1 })}>{t.previous}</button>
          <button type="button" class="secondary" disabled={query.page + 1 >= pages} onClick={() => void store.setQuery({ page: query.page + 1 })}>{t.next}</button>
        </nav>
      </section>
    </>
  );
}

function settingsSummary(job: JobInfo, t: Catalogue["jobs"]): string {
  const s = job.settings;
  const parts = [
    t.summary.task(s.task),
    t.summary.model(s.model),
    t.summary.language(s.language),
    t.summary.alignment(s.alignment !== null),
    s.diarization ? t.summary.diarization(s.diarization.min_speakers, s.diarization.max_speakers) : t.summary.noDiarization,
  ];
  if (s.email_notification) parts.push(t.summary.email);
  return parts.join(", ");
}

function JobRow(props: {
  job: JobInfo; strings: Catalogue; selected: boolean; open: boolean;
  onSelect: (on: boolean) => void; onToggleOpen: () => void; onAbort: () => void; onDelete: () => void;
}) {
  const { job, strings } = props;
  const t = strings.jobs;
  const pct = Math.round(job.progress);
  const running = job.step === "runner_in_progress" || job.step === "runner_assigned";
  return (
    <li class={`job step-${job.step}`}>
      <div class="job-head">
        <input type="checkbox" checked={props.selected} aria-label={t.select(job.file_name)}
          onChange={(e) => props.onSelect((e.currentTarget as HTMLInputElement).checked)} />
        <strong>{job.file_name}</strong>
        <span class="badge">{t.stepShort[job.step] ?? job.step}</span>
        <span class="muted">#{job.id} · {t.submitted(formatTime(job.creation_timestamp))}
          {job.finish_timestamp && <> · {t.finished(formatTime(job.finish_timestamp))}</>}</span>
      </div>
      {running && <progress max={100} value={pct} aria-label={`${job.file_name}: ${t.progress(pct)}`}>{t.progress(pct)}</progress>}
      <p>{t.steps[job.step] ?? job.step}{running && <> {t.progress(pct)}</>}</p>
      {job.abort && job.step !== "failed" && <p>{t.abortRequested}</p>}
      {job.error_msg && <p class="field-error"><strong>{t.errorLabel}:</strong> {job.error_msg}</p>}
      <p class="actions">
        {hasTranscript(job.step) && <Link to={transcriptPath(job.id)}>{t.open}</Link>}
        <button type="button" class="secondary" aria-expanded={props.open} onClick={props.onToggleOpen}>{t.details}</button>
        {canAbort(job.step) && <button type="button" class="secondary" onClick={props.onAbort}>{t.abort}</button>}
        {isFinished(job.step) && <button type="button" class="secondary" onClick={props.onDelete}>{t.remove}</button>}
      </p>
      {props.open && (
        <dl class="job-details">
          <dt>{t.settingsLabel}</dt>
          <dd>{settingsSummary(job, t)}</dd>
          <dt>{t.runner}</dt>
          <dd>
            {job.runner_name ?? t.runnerNone}
            {job.runner_version && <> ({t.runnerVersion(job.runner_version)})</>}
            {job.runner_source_code_url && <> · <a href={job.runner_source_code_url} rel="noopener noreferrer" target="_blank">{t.runnerSource}</a></>}
          </dd>
        </dl>
      )}
    </li>
  );
}
