// The app: session, strings, and the page the hash names, with its access rule applied.
import { useEffect, useRef, useState } from "preact/hooks";
import { catalogue, initialLanguage, storeLanguage, StringsContext, useStrings, type Language } from "../i18n";
import { TermsGate } from "../account/Terms";
import { ErrorBoundary, ErrorMessage } from "./ErrorView";
import { Layout } from "./Layout";
import { Link, matchRoute, useLocation, type Page, type PageProps, type RouteDef } from "./router";
import { ROUTES } from "./routes";
import { goBackAfterSignIn, goToSignIn, SessionProvider, useSession } from "./session";
import { takeOidcPending } from "../auth/SignIn";

export function App() {
  const [language, setLanguage] = useState<Language>(initialLanguage);
  useEffect(() => {
    document.documentElement.lang = language;
  }, [language]);
  return (
    <StringsContext.Provider value={catalogue(language)}>
      <SessionProvider>
        <Shell language={language} onLanguage={(l) => { storeLanguage(l); setLanguage(l); }} />
      </SessionProvider>
    </StringsContext.Provider>
  );
}

function Shell(props: { language: Language; onLanguage: (language: Language) => void }) {
  const location = useLocation();
  const strings = useStrings();
  const session = useSession();
  const match = matchRoute(ROUTES, location.path);
  const title = match ? match.route.title(strings) : strings.app.notFound;

  useEffect(() => {
    document.title = `${title} · ${strings.app.name}`;
  }, [title, strings]);

  // after a navigation, move the focus to the page, so keyboard and screen-reader users start there
  const first = useRef(true);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    document.getElementById("main")?.focus();
  }, [location.path]);

  // back from an OIDC provider (its callback redirects to client_url): return to the user's place
  useEffect(() => {
    if (session.status === "user" && takeOidcPending()) goBackAfterSignIn();
  }, [session.status]);

  const needsSignIn = match && match.route.access !== "anon" && session.status === "anonymous";
  useEffect(() => {
    if (needsSignIn) goToSignIn(match!.route.access === "admin");
  }, [needsSignIn]);

  let content;
  if (!match) {
    content = <NotFound />;
  } else if (match.route.access !== "anon" && session.status !== "user") {
    content = <p role="status">{strings.app.loading}</p>;
  } else if (match.route.access === "admin" && !session.isAdmin) {
    content = <AdminRequired />;
  } else if (match.route.access !== "anon" && session.pendingTerms.length > 0 && !match.route.withoutTerms) {
    content = <TermsGate />;
  } else {
    content = <RoutePage route={match.route} params={match.params} query={location.query} />;
  }
  return (
    <Layout routes={ROUTES} path={location.path} language={props.language} onLanguage={props.onLanguage}>
      <ErrorBoundary resetKey={location.path}>{content}</ErrorBoundary>
    </Layout>
  );
}

const loaded = new Map<RouteDef, Page>();

function RoutePage(props: { route: RouteDef } & PageProps) {
  const { route, ...pageProps } = props;
  const strings = useStrings();
  const [page, setPage] = useState<Page | null>(() => route.component ?? loaded.get(route) ?? null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    const known = route.component ?? loaded.get(route) ?? null;
    setPage(() => known);
    setError(null);
    if (known || !route.load) return;
    let current = true;
    route.load().then(
      (module) => {
        loaded.set(route, module.default);
        if (current) setPage(() => module.default);
      },
      (failure) => current && setError(failure),
    );
    return () => {
      current = false;
    };
  }, [route]);
  if (error) return <ErrorMessage error={error} onRetry={() => window.location.reload()} />;
  if (!page) return <p role="status">{strings.app.loading}</p>;
  const PageComponent = page;
  return <PageComponent {...pageProps} />;
}

function NotFound() {
  const strings = useStrings();
  return (
    <section>
      <h1>{strings.app.notFound}</h1>
      <p><Link to="/">{strings.app.toHome}</Link></p>
    </section>
  );
}

function AdminRequired() {
  const strings = useStrings();
  return (
    <section>
      <h1>{strings.auth.adminSignInTitle}</h1>
      <p><Link to="/auth/admin">{strings.auth.signInAdmin}</Link></p>
    </section>
  );
}
