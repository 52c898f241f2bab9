// Sign-in: the local form (modes enabled and no_signup), one button per visible OIDC provider
// (a full-page navigation to /api/oidc/login/<name lower-cased>), one form per visible LDAP
// provider (POST /api/ldap/login/<name>); `admin` signs in with scope "admin".
import { useEffect, useState } from "preact/hooks";
import { api } from "../api/client";
import { ErrorMessage } from "../app/ErrorView";
import { Link, type PageProps } from "../app/router";
import { goBackAfterSignIn, rememberReturn, useSession } from "../app/session";
import { useAction } from "../app/useAction";
import { useStrings } from "../i18n";
import { Field, value } from "./forms";
import { acceptTermsFromSignup } from "./signupTerms";

const OIDC_PENDING = "wisp.oidcPending";

/** Marks an OIDC round trip, so that the page it comes back to returns the user to their place. */
export function startOidc(name: string): void {
  try {
    sessionStorage.setItem(OIDC_PENDING, "1");
  } catch {
    // the user lands on the start page instead
  }
  window.location.assign(`api/oidc/login/${encodeURIComponent(name.trim().toLowerCase())}`);
}

/** True once after coming back from an OIDC provider. */
export function takeOidcPending(): boolean {
  try {
    const pending = sessionStorage.getItem(OIDC_PENDING) === "1";
    sessionStorage.removeItem(OIDC_PENDING);
    return pending;
  } catch {
    return false;
  }
}

export function SignInPage(props: PageProps & { admin?: boolean }) {
  const strings = useStrings();
  const session = useSession();
  const admin = props.admin ?? false;
  const settings = session.authSettings;
  const [email, setEmail] = useState(props.query.get("email") ?? "");
  const [password, setPassword] = useState("");
  const [ldap, setLdap] = useState<string | null>(null);

  // already signed in (and with the privileges this page is for): nothing to do here
  useEffect(() => {
    if (session.status === "user" && (!admin || session.isAdmin)) goBackAfterSignIn();
  }, [session.status, session.isAdmin, admin]);

  const login = useAction(async (path: "local" | string, username: string, secret: string) => {
    const form = { username, password: secret, scope: admin ? "admin" : "" };
    if (path === "local") await api("post", "/api/local-account/login", { form, anonymous: true });
    else await api("post", "/api/ldap/login/{idp_name}", { params: { idp_name: path }, form, anonymous: true });
    await acceptTermsFromSignup(username);
    await session.refresh();
    goBackAfterSignIn();
  });

  if (!settings) return <p role="status">{strings.app.loading}</p>;
  const mode = settings.local_account.mode;
  const localForm = mode === "enabled" || mode === "no_signup";
  const oidc = Object.entries(settings.oidc_providers).filter(([, p]) => !p.hidden);
  const ldapProviders = Object.entries(settings.ldap_providers).filter(([, p]) => !p.hidden);

  return (
    <section class="narrow">
      <h1>{admin ? strings.auth.adminSignInTitle : strings.auth.signInTitle}</h1>
      <ErrorMessage error={login.error} />
      {localForm && (
        <form onSubmit={(e) => { e.preventDefault(); void login.run("local", email, password); }}>
          <Field label={strings.auth.email} type="email" name="username" autocomplete="username" required
            value={email} onInput={(e) => setEmail(value(e))} />
          <Field label={strings.auth.password} type="password" name="password" autocomplete="current-password" required
            value={password} onInput={(e) => setPassword(value(e))} />
          <button type="submit" disabled={login.busy}>{admin ? strings.auth.signInAdmin : strings.auth.signIn}</button>
        </form>
      )}
      {localForm && (
        <p class="links">
          <Link to="/auth/request-reset">{strings.auth.forgotLink}</Link>
          {mode === "enabled" && !admin && <> · <Link to="/auth/signup">{strings.auth.signupLink}</Link></>}
        </p>
      )}
      {(oidc.length > 0 || ldapProviders.length > 0) && localForm && <p class="or">{strings.auth.or}</p>}
      {oidc.length > 0 && (
        <ul class="providers">
          {oidc.map(([name, provider]) => (
            <li>
              <button type="button" class="provider" onClick={() => startOidc(name)}>
                {provider.icon_url && <img src={provider.icon_url} alt="" width={20} height={20} />}
                {strings.auth.withProvider(name)}
              </button>
            </li>
          ))}
        </ul>
      )}
      {ldapProviders.map(([name]) => (
        ldap === name ? (
          <LdapForm name={name} busy={login.busy} onSubmit={(user, secret) => void login.run(name, user, secret)} />
        ) : (
          <p><button type="button" class="provider" onClick={() => setLdap(name)}>{strings.auth.withProvider(name)}</button></p>
        )
      ))}
      {!localForm && oidc.length === 0 && ldapProviders.length === 0 && <p>{strings.auth.noMethods}</p>}
      <p class="links">
        {admin ? <Link to="/auth/login">{strings.auth.userLink}</Link> : <Link to="/auth/admin">{strings.auth.adminLink}</Link>}
      </p>
    </section>
  );
}

function LdapForm(props: { name: string; busy: boolean; onSubmit: (user: string, password: string) => void }) {
  const strings = useStrings();
  const [user, setUser] = useState("");
  const [password, setPassword] = useState("");
  return (
    <form aria-label={strings.auth.ldapTitle(props.name)} onSubmit={(e) => { e.preventDefault(); props.onSubmit(user, password); }}>
      <h2>{strings.auth.ldapTitle(props.name)}</h2>
      <Field label={strings.auth.ldapUsername} autocomplete="username" required value={user} onInput={(e) => setUser(value(e))} />
      <Field label={strings.auth.password} type="password" autocomplete="current-password" required
        value={password} onInput={(e) => setPassword(value(e))} />
      <button type="submit" disabled={props.busy}>{strings.auth.signIn}</button>
    </form>
  );
}

export function AdminSignInPage(props: PageProps) {
  return <SignInPage {...props} admin />;
}

/** Where the OIDC callback may land (`/auth/oidc-accept`, or client_url itself): back to the user's place. */
export function OidcAcceptPage() {
  const strings = useStrings();
  const session = useSession();
  useEffect(() => {
    if (session.status === "user") {
      takeOidcPending();
      goBackAfterSignIn();
    }
  }, [session.status]);
  if (session.status === "anonymous") {
    return (
      <section class="narrow">
        <h1>{strings.auth.oidcTitle}</h1>
        <ErrorMessage error={new Error(strings.auth.oidcFailed)} />
        <p><Link to="/auth/login">{strings.auth.backToSignIn}</Link></p>
      </section>
    );
  }
  return <p role="status">{strings.auth.oidcTitle}</p>;
}

export { rememberReturn };
