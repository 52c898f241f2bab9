// The frame of every page: skip link, header (navigation, who is signed in, language), the site
// banners, the page, and a footer with the imprint and the API docs.
import type { ComponentChildren } from "preact";
import { useState } from "preact/hooks";
import { api } from "../api/client";
import { LANGUAGES, useStrings, type Language } from "../i18n";
import { ErrorMessage } from "./ErrorView";
import { Link, type RouteDef } from "./router";
import { useSession } from "./session";

export function Layout(props: {
  routes: RouteDef[];
  path: string;
  language: Language;
  onLanguage: (language: Language) => void;
  children: ComponentChildren;
}) {
  const strings = useStrings();
  const session = useSession();
  const { user, about } = session;
  const nav = props.routes.filter((r) => r.nav && (r.access !== "admin" || session.isAdmin) && (r.access === "anon" || user));
  return (
    <>
      <a class="skip" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById("main")?.focus(); }}>
        {strings.app.skipToContent}
      </a>
      <header class="top">
        <Link to="/" class="brand">{strings.app.name}</Link>
        {user && nav.length > 0 && (
          <nav aria-label={strings.app.mainNav}>
            <ul>
              {nav.map((r) => (
                <li><Link to={r.path} aria-current={props.path === r.path ? "page" : undefined}>{r.nav!(strings)}</Link></li>
              ))}
            </ul>
          </nav>
        )}
        <div class="who">
          {user && (
            <>
              <span>{strings.app.signedInAs(user.email)}{session.isAdmin && ` (${strings.app.adminSession})`}</span>
              <Link to="/account">{strings.app.account}</Link>
              <button type="button" class="link" onClick={() => void session.signOut()}>{strings.app.signOut}</button>
            </>
          )}
          <label class="language">
            <span class="visually-hidden">{strings.app.language}</span>
            <select value={props.language} onChange={(e) => props.onLanguage((e.target as HTMLSelectElement).value as Language)}>
              {Object.entries(LANGUAGES).map(([code, name]) => <option value={code}>{name}</option>)}
            </select>
          </label>
        </div>
      </header>
      {about?.site_banners.map((banner) => (
        <div
          class={`banner${banner.urgency >= 200 ? " urgent" : banner.urgency >= 100 ? " important" : ""}`}
          role="note"
          // banners are HTML written by this instance's administrators (spec §3.7)
          dangerouslySetInnerHTML={{ __html: banner.html }}
        />
      ))}
      {user && !user.is_verified && <VerifyNotice />}
      <main id="main" tabIndex={-1}>
        {session.loadError !== null && <ErrorMessage error={session.loadError} onRetry={() => void session.refresh()} />}
        {props.children}
      </main>
      <footer>
        {about?.job_retention_in_days != null && user && <p>{strings.app.retentionNotice(about.job_retention_in_days)}</p>}
        <p>
          <a href="docs">{strings.app.apiDocs}</a>
          {about?.imprint && (
            <>
              {" · "}
              {about.imprint.url
                ? <a href={about.imprint.url}>{strings.app.imprint}: {about.imprint.name}</a>
                : <span>{strings.app.imprint}: {about.imprint.name}</span>}
            </>
          )}
          {about && <> · Wisp {about.version}</>}
        </p>
        {about?.imprint?.additional_imprint_html && (
          <div class="imprint" dangerouslySetInnerHTML={{ __html: about.imprint.additional_imprint_html }} />
        )}
      </footer>
    </>
  );
}

function VerifyNotice() {
  const strings = useStrings();
  const [state, setState] = useState<"idle" | "sent" | unknown>("idle");
  return (
    <div class="notice" role="status">
      <p>{strings.app.notVerified}</p>
      {state === "sent" ? <p>{strings.app.activationSent}</p> : (
        <button type="button" onClick={async () => {
          try {
            await api("get", "/api/local-account/resend_activation_email");
            setState("sent");
          } catch (error) {
            setState(error);
          }
        }}>{strings.app.resendActivation}</button>
      )}
      {state !== "idle" && state !== "sent" && <ErrorMessage error={state} />}
    </div>
  );
}
