// `#/settings`: the user's default job settings, edited and saved ("save as my default").
import { useEffect, useState } from "preact/hooks";
import "../jobs/jobs.css";
import { ErrorMessage } from "../app/ErrorView";
import { useStrings } from "../i18n";
import { loadDefaultSettings, submitSettings } from "./api";
import type { FieldErrors } from "./errors";
import { applicationDefaults, toForm } from "./model";
import type { SettingsForm as Form } from "./model";
import { hasRuleProblems, SettingsForm } from "./SettingsForm";

export default function SettingsPage() {
  const strings = useStrings();
  const t = strings.settings;
  const [form, setForm] = useState<Form | null>(null);
  const [errors, setErrors] = useState<FieldErrors | null>(null);
  const [failure, setFailure] = useState<unknown>(null);
  const [saved, setSaved] = useState(false);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    loadDefaultSettings().then((s) => setForm(toForm(s)), setFailure);
  }, []);

  const save = async (event: Event) => {
    event.preventDefault();
    if (!form || hasRuleProblems(form)) return;
    setBusy(true);
    setSaved(false);
    setFailure(null);
    try {
      const result = await submitSettings(form, true);
      setErrors(result.ok ? null : result.errors);
      setSaved(result.ok);
    } catch (error) {
      setFailure(error);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section>
      <h1>{t.title}</h1>
      <p>{t.intro}</p>
      <ErrorMessage error={failure} />
      {!form ? (
        !failure && <p>{t.loading}</p>
      ) : (
        <form onSubmit={save} noValidate>
          {errors && <div class="error" role="alert"><p><strong>{t.invalid}</strong></p>
            {errors.general.length > 0 && <ul>{errors.general.map((m) => <li>{m}</li>)}</ul>}</div>}
          <SettingsForm value={form} onChange={(next) => { setForm(next); setSaved(false); }} errors={errors?.fields} disabled={busy} />
          {saved && <p class="success" role="status">{t.savedDefault}</p>}
          <p class="actions">
            <button type="submit" disabled={busy || hasRuleProblems(form)}>{t.saveDefault}</button>
            <button type="button" class="secondary" onClick={() => { setForm(toForm(applicationDefaults())); setErrors(null); }}>{t.reset}</button>
          </p>
        </form>
      )}
    </section>
  );
}
