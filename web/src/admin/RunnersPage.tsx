// Runners: who is online and what each one does (Wisp extension GET /api/wisp/admin/runners),
// creating one (its token is shown once) and invalidating one (spec §3.7).
import { useCallback, useEffect, useState } from "preact/hooks";
import { api, type Schemas } from "../api/client";
import { ErrorMessage } from "../app/ErrorView";
import { useAction } from "../app/useAction";
import { useStrings } from "../i18n";
import { AdminTabs } from "./AdminTabs";

type Runner = Schemas["RunnerInfoResponse"];

const REFRESH_MS = 5000;

/** "12 s ago", "3 min ago", or the date for older times. */
export function ago(iso: string | null, now: number, words: { seconds: (n: number) => string; minutes: (n: number) => string }): string {
  if (!iso) return "";
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (seconds < 120) return words.seconds(seconds);
  if (seconds < 3600 * 2) return words.minutes(Math.round(seconds / 60));
  return new Date(iso).toLocaleString();
}

export default function RunnersPage() {
  const strings = useStrings().admin;
  const [runners, setRunners] = useState<Runner[] | null>(null);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [now, setNow] = useState(Date.now());
  const [created, setCreated] = useState<Schemas["RunnerCreatedResponse"] | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  const [copied, setCopied] = useState(false);

  const reload = useCallback(async () => {
    try {
      setRunners(await api("get", "/api/wisp/admin/runners"));
      setLoadError(null);
    } catch (error) {
      setLoadError(error);
    }
    setNow(Date.now());
  }, []);

  useEffect(() => {
    void reload();
    const timer = setInterval(() => {
      if (!document.hidden) void reload();
    }, REFRESH_MS);
    return () => clearInterval(timer);
  }, [reload]);

  const create = useAction(async () => {
    setMessage(null);
    setCopied(false);
    setCreated(await api("post", "/api/admins/create_runner"));
    await reload();
  });
  const invalidate = useAction(async (runner: Runner) => {
    if (!window.confirm(strings.invalidateConfirm(runner.id, runner.name))) return;
    setMessage(await api("delete", "/api/admins/invalidate_runner", { query: { runner_id: runner.id } }));
    if (created?.id === runner.id) setCreated(null);
    await reload();
  });

  return (
    <section class="admin">
      <h1>{strings.title}</h1>
      <AdminTabs current="/admin" />
      <h2>{strings.runnersTitle}</h2>
      <p class="hint">{strings.runnersIntro}</p>
      <p class="actions">
        <button type="button" onClick={() => void create.run()} disabled={create.busy}>{strings.createRunner}</button>
        <button type="button" class="secondary" onClick={() => void reload()}>{strings.refresh}</button>
      </p>
      <ErrorMessage error={create.error} onDismiss={() => create.setError(null)} />
      {created && (
        <div class="success" role="status" aria-live="polite">
          <p>{strings.runnerCreated(created.id)}</p>
          <code class="secret" data-testid="runner-token">{created.token}</code>
          <p class="actions">
            <button type="button" class="secondary" onClick={async () => {
              try {
                await navigator.clipboard.writeText(created.token);
                setCopied(true);
              } catch {
                setCopied(false);
              }
            }}>{copied ? strings.copied : strings.copy}</button>
            <button type="button" class="secondary" onClick={() => setCreated(null)}>{strings.hideToken}</button>
          </p>
        </div>
      )}
      {message && <p class="success" role="status">{message}</p>}
      <ErrorMessage error={invalidate.error} onDismiss={() => invalidate.setError(null)} />
      <ErrorMessage error={loadError} onRetry={() => void reload()} />
      {runners === null && !loadError && <p role="status">{strings.loading}</p>}
      {runners !== null && runners.length === 0 && <p>{strings.noRunners}</p>}
      {runners !== null && runners.length > 0 && (
        <table class="runners">
          <thead>
            <tr>
              <th scope="col">{strings.colId}</th>
              <th scope="col">{strings.colName}</th>
              <th scope="col">{strings.colState}</th>
              <th scope="col">{strings.colJob}</th>
              <th scope="col">{strings.colHeartbeat}</th>
              <th scope="col">{strings.colVersion}</th>
              <th scope="col">{strings.colPriority}</th>
              <th scope="col"><span class="visually-hidden">{strings.colActions}</span></th>
            </tr>
          </thead>
          <tbody>
            {runners.map((runner) => (
              <tr data-runner={runner.id}>
                <td>{runner.id}</td>
                <td>{runner.name ?? "—"}</td>
                <td><span class={`state state-${runner.state}`}>{strings.states[runner.state]}</span></td>
                <td>
                  {runner.job_id === null ? "—" : strings.jobWithProgress(runner.job_id, runner.state === "processing" ? runner.progress : null)}
                </td>
                <td title={runner.last_heartbeat ? new Date(runner.last_heartbeat).toLocaleString() : undefined}>
                  {runner.last_heartbeat ? ago(runner.last_heartbeat, now, strings.ago) : "—"}
                </td>
                <td>
                  {runner.version ?? "—"}
                  {runner.git_hash && <> <code title={runner.git_hash}>{runner.git_hash.slice(0, 10)}</code></>}
                  {runner.source_code_url && <> · <a href={runner.source_code_url} rel="noopener noreferrer">{strings.source}</a></>}
                </td>
                <td>{runner.priority ?? "—"}</td>
                <td>
                  <button type="button" class="danger" disabled={invalidate.busy} onClick={() => void invalidate.run(runner)}
                    aria-label={strings.invalidateRunner(runner.id)}>
                    {strings.invalidate}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
