// Who is signed in, and what the instance offers (/api/about, /api/auth_settings): loaded once at
// start, refreshed after sign-in and account changes. The session itself is the `token` cookie the
// API sets (same origin); any 401 from a call means it has ended (api/client.ts).
import type { ComponentChildren } from "preact";
import { createContext } from "preact";
import { useCallback, useContext, useEffect, useMemo, useState } from "preact/hooks";
import { api, ApiError, setUnauthorizedListener, type Schemas } from "../api/client";
import { currentLocation, navigate } from "./router";

export type User = Schemas["UserResponse"];
export type About = Schemas["AboutResponse"];
export type AuthSettings = Schemas["AuthSettingsResponse"];

export interface Terms {
  id: string;
  name: string;
  version: number;
  html: string;
  /** The version this user accepted (0: none). */
  accepted: number;
}

export interface Session {
  /** loading: not known yet; anonymous: nobody signed in; user: `user` is set. */
  status: "loading" | "anonymous" | "user";
  user: User | null;
  /** The session token carries admin privileges (admin sign-in, or an OIDC admin). */
  isAdmin: boolean;
  about: About | null;
  authSettings: AuthSettings | null;
  /** Terms of service the user has not accepted at their current version. */
  pendingTerms: Terms[];
  allTerms: Terms[];
  /** An error loading about/auth_settings (shown by the layout). */
  loadError: unknown;
  refresh: () => Promise<void>;
  signOut: () => Promise<void>;
}

const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error("useSession outside SessionProvider");
  return session;
}

// Where to return after signing in: kept in sessionStorage across OIDC's full-page round trip.
const RETURN_KEY = "wisp.returnTo";

export function rememberReturn(target: string): void {
  try {
    sessionStorage.setItem(RETURN_KEY, target);
  } catch {
    // storage off: the user lands on the start page
  }
}

/** The place stored before signing in (a hash path like `/jobs?page=2`), removed once read. */
export function takeReturn(): string | null {
  try {
    const value = sessionStorage.getItem(RETURN_KEY);
    sessionStorage.removeItem(RETURN_KEY);
    return value && value.startsWith("/") && !value.startsWith("/auth") ? value : null;
  } catch {
    return null;
  }
}

/** Goes to the stored return place, or `fallback`. */
export function goBackAfterSignIn(fallback = "/"): void {
  const target = takeReturn() ?? fallback;
  const [path, query = ""] = target.split("?", 2);
  navigate(path, Object.fromEntries(new URLSearchParams(query)), true);
}

/** The sign-in page, keeping the current place to come back to. */
export function goToSignIn(admin = false): void {
  const here = currentLocation();
  if (!here.path.startsWith("/auth") && here.path !== "/local/activate") {
    const qs = here.query.toString();
    rememberReturn(here.path + (qs ? `?${qs}` : ""));
  }
  navigate(admin ? "/auth/admin" : "/auth/login", undefined, true);
}

function termsOf(about: About | null, user: User | null): Terms[] {
  return Object.entries(about?.terms_of_services ?? {}).map(([id, tos]) => ({
    id, name: tos.name, version: tos.version, html: tos.tos_html, accepted: user?.accepted_tos?.[id] ?? 0,
  }));
}

async function probeAdmin(): Promise<boolean> {
  // the one GET an admin session passes and any other token fails with 403
  try {
    await api("get", "/api/wisp/admin/runners", { anonymous: true });
    return true;
  } catch {
    return false;
  }
}

export function SessionProvider(props: { children: ComponentChildren }) {
  const [status, setStatus] = useState<Session["status"]>("loading");
  const [user, setUser] = useState<User | null>(null);
  const [isAdmin, setAdmin] = useState(false);
  const [about, setAbout] = useState<About | null>(null);
  const [authSettings, setAuthSettings] = useState<AuthSettings | null>(null);
  const [loadError, setLoadError] = useState<unknown>(null);

  const refresh = useCallback(async () => {
    const [infoResult, aboutResult, settingsResult] = await Promise.allSettled([
      api("get", "/api/users/info", { anonymous: true }),
      api("get", "/api/about"),
      api("get", "/api/auth_settings"),
    ]);
    if (aboutResult.status === "fulfilled") setAbout(aboutResult.value);
    if (settingsResult.status === "fulfilled") setAuthSettings(settingsResult.value);
    const failed = [aboutResult, settingsResult].find((r) => r.status === "rejected") as PromiseRejectedResult | undefined;
    setLoadError(failed ? failed.reason : null);
    if (infoResult.status === "fulfilled") {
      setUser(infoResult.value);
      setAdmin(infoResult.value.is_verified ? await probeAdmin() : false);
      setStatus("user");
    } else {
      const reason = infoResult.reason;
      if (!(reason instanceof ApiError && reason.status === 401)) setLoadError(reason);
      setUser(null);
      setAdmin(false);
      setStatus("anonymous");
    }
  }, []);

  const signOut = useCallback(async () => {
    try {
      await api("delete", "/api/users/logout", { anonymous: true });
    } catch {
      // already signed out or unreachable: the local state is dropped regardless
    }
    setUser(null);
    setAdmin(false);
    setStatus("anonymous");
    navigate("/auth/login", undefined, true);
  }, []);

  useEffect(() => {
    void refresh();
  }, [refresh]);

  useEffect(() => {
    setUnauthorizedListener(() => {
      setUser(null);
      setAdmin(false);
      setStatus("anonymous");
      goToSignIn();
    });
    return () => setUnauthorizedListener(null);
  }, []);

  const value = useMemo<Session>(() => {
    const allTerms = termsOf(about, user);
    return {
      status, user, isAdmin, about, authSettings, loadError, refresh, signOut, allTerms,
      pendingTerms: user ? allTerms.filter((t) => t.accepted < t.version) : [],
    };
  }, [status, user, isAdmin, about, authSettings, loadError, refresh, signOut]);

  return <SessionContext.Provider value={value}>{props.children}</SessionContext.Provider>;
}
