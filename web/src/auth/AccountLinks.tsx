// The pages mail links and the sign-in page lead to: sign-up, activation (`/local/activate`),
// password reset (`/auth/local/reset-password`) and asking for a reset mail (spec §3.2, §8).
import { useEffect, useState } from "preact/hooks";
import { api } from "../api/client";
import { ErrorMessage } from "../app/ErrorView";
import { Link, type PageProps } from "../app/router";
import { useSession } from "../app/session";
import { useAction } from "../app/useAction";
import { useStrings } from "../i18n";
import { Field, Status, value } from "./forms";
import { rememberSignupTerms } from "./signupTerms";

export function SignUpPage() {
  const strings = useStrings();
  const session = useSession();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [repeat, setRepeat] = useState("");
  const [accepted, setAccepted] = useState<Record<string, boolean>>({});
  const [done, setDone] = useState(false);
  const signup = useAction(async () => {
    if (password !== repeat) throw new Error(strings.auth.passwordsDiffer);
    await api("post", "/api/local-account/signup", { json: { email, password }, anonymous: true });
    rememberSignupTerms(email, Object.fromEntries(session.allTerms.map((t) => [t.id, t.version])));
    setDone(true);
  });
  const settings = session.authSettings;
  if (!settings) return <p role="status">{strings.app.loading}</p>;
  if (settings.local_account.mode !== "enabled") {
    return <section class="narrow"><h1>{strings.auth.signupTitle}</h1><p>{strings.auth.noSignup}</p>
      <p><Link to="/auth/login">{strings.auth.backToSignIn}</Link></p></section>;
  }
  if (done) {
    return (
      <section class="narrow">
        <h1>{strings.auth.signupTitle}</h1>
        <Status>{strings.auth.signupDone}</Status>
        <p><Link to="/auth/login" query={{ email }}>{strings.auth.continueSignIn}</Link></p>
      </section>
    );
  }
  const domains = settings.local_account.allowed_email_domains;
  return (
    <section class="narrow">
      <h1>{strings.auth.signupTitle}</h1>
      <ErrorMessage error={signup.error} />
      <form onSubmit={(e) => { e.preventDefault(); void signup.run(); }}>
        <Field label={strings.auth.email} type="email" autocomplete="email" required value={email}
          hint={domains.length ? strings.auth.allowedDomains(domains.join(", ")) : undefined}
          onInput={(e) => setEmail(value(e))} />
        <Field label={strings.auth.password} type="password" autocomplete="new-password" required minLength={12}
          hint={strings.auth.passwordRule} value={password} onInput={(e) => setPassword(value(e))} />
        <Field label={strings.auth.repeatPassword} type="password" autocomplete="new-password" required
          value={repeat} onInput={(e) => setRepeat(value(e))} />
        {session.allTerms.map((terms) => (
          <fieldset class="terms">
            <legend>{terms.name}</legend>
            <div class="tos" dangerouslySetInnerHTML={{ __html: terms.html }} />
            <label class="check">
              <input type="checkbox" required checked={accepted[terms.id] ?? false}
                onChange={(e) => setAccepted({ ...accepted, [terms.id]: (e.currentTarget as HTMLInputElement).checked })} />
              {strings.auth.acceptTos(terms.name)}
            </label>
          </fieldset>
        ))}
        <button type="submit" disabled={signup.busy}>{strings.auth.signUp}</button>
      </form>
      <p class="links"><Link to="/auth/login">{strings.auth.haveAccount}</Link></p>
    </section>
  );
}

export function ActivatePage(props: PageProps) {
  const strings = useStrings();
  const session = useSession();
  const token = props.query.get("token");
  const [state, setState] = useState<"working" | "done" | unknown>("working");
  useEffect(() => {
    if (!token) return;
    let current = true;
    api("post", "/api/local-account/activate", { query: { token }, anonymous: true }).then(
      () => {
        if (!current) return;
        setState("done");
        void session.refresh();
      },
      (error) => current && setState(error),
    );
    return () => {
      current = false;
    };
  }, [token]);
  return (
    <section class="narrow">
      <h1>{strings.auth.activateTitle}</h1>
      {!token ? <ErrorMessage error={new Error(strings.auth.missingToken)} />
        : state === "working" ? <p role="status">{strings.auth.activating}</p>
        : state === "done" ? (
          <>
            <Status>{strings.auth.activated}</Status>
            <p>{session.status === "user"
              ? <Link to="/">{strings.auth.continueApp}</Link>
              : <Link to="/auth/login">{strings.auth.continueSignIn}</Link>}</p>
          </>
        ) : (
          <>
            <ErrorMessage error={state} />
            <p>{strings.auth.activateFailed}</p>
            <p><Link to="/auth/login">{strings.auth.backToSignIn}</Link></p>
          </>
        )}
    </section>
  );
}

export function ResetPasswordPage(props: PageProps) {
  const strings = useStrings();
  const token = props.query.get("token");
  const [password, setPassword] = useState("");
  const [repeat, setRepeat] = useState("");
  const [done, setDone] = useState(false);
  const reset = useAction(async () => {
    if (password !== repeat) throw new Error(strings.auth.passwordsDiffer);
    await api("post", "/api/local-account/reset_password", { json: { token: token ?? "", new_password: password }, anonymous: true });
    setDone(true);
  });
  return (
    <section class="narrow">
      <h1>{strings.auth.resetTitle}</h1>
      {!token ? <ErrorMessage error={new Error(strings.auth.missingToken)} /> : done ? (
        <>
          <Status>{strings.auth.resetDone}</Status>
          <p><Link to="/auth/login">{strings.auth.continueSignIn}</Link></p>
        </>
      ) : (
        <>
          <ErrorMessage error={reset.error} />
          <form onSubmit={(e) => { e.preventDefault(); void reset.run(); }}>
            <Field label={strings.auth.newPassword} type="password" autocomplete="new-password" required minLength={12}
              hint={strings.auth.passwordRule} value={password} onInput={(e) => setPassword(value(e))} />
            <Field label={strings.auth.repeatPassword} type="password" autocomplete="new-password" required
              value={repeat} onInput={(e) => setRepeat(value(e))} />
            <button type="submit" disabled={reset.busy}>{strings.auth.resetSubmit}</button>
          </form>
        </>
      )}
    </section>
  );
}

export function RequestResetPage() {
  const strings = useStrings();
  const [email, setEmail] = useState("");
  const [answer, setAnswer] = useState<string | null>(null);
  const request = useAction(async () => {
    await api("get", "/api/local-account/request_password_reset", { query: { email }, anonymous: true });
    setAnswer(strings.auth.requestResetDone);
  });
  return (
    <section class="narrow">
      <h1>{strings.auth.requestResetTitle}</h1>
      <p>{strings.auth.requestResetIntro}</p>
      <ErrorMessage error={request.error} />
      {answer ? <Status>{answer}</Status> : (
        <form onSubmit={(e) => { e.preventDefault(); void request.run(); }}>
          <Field label={strings.auth.email} type="email" autocomplete="email" required value={email} onInput={(e) => setEmail(value(e))} />
          <button type="submit" disabled={request.busy}>{strings.auth.requestResetSubmit}</button>
        </form>
      )}
      <p class="links"><Link to="/auth/login">{strings.auth.backToSignIn}</Link></p>
    </section>
  );
}
