// Hash routing: `#/path?query`. Mail links and client_url (which normally ends in "/#") point into
// it: `#/local/activate?token=…`, `#/auth/local/reset-password?token=…` (spec §8).
import type { ComponentChildren, ComponentType, JSX } from "preact";
import { useEffect, useState } from "preact/hooks";
import type { Catalogue } from "../i18n";

export interface Location {
  path: string;
  query: URLSearchParams;
}

export function currentLocation(): Location {
  const hash = window.location.hash.replace(/^#/, "");
  const [path, query = ""] = hash.split("?", 2);
  return { path: path && path.startsWith("/") ? path : "/", query: new URLSearchParams(query) };
}

/** The hash for `path` with `query` (`/jobs`, {page: 2} → `#/jobs?page=2`). */
export function href(path: string, query?: Record<string, string | number | undefined>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) if (value !== undefined) search.set(key, String(value));
  const qs = search.toString();
  return `#${path}${qs ? `?${qs}` : ""}`;
}

export function navigate(path: string, query?: Record<string, string | number | undefined>, replace = false): void {
  const target = href(path, query);
  if (replace) {
    window.history.replaceState(null, "", target);
    window.dispatchEvent(new HashChangeEvent("hashchange"));
  } else {
    window.location.hash = target;
  }
}

/** The current location, re-rendered on every hash change. */
export function useLocation(): Location {
  const [location, setLocation] = useState(currentLocation);
  useEffect(() => {
    const update = () => setLocation(currentLocation());
    window.addEventListener("hashchange", update);
    return () => window.removeEventListener("hashchange", update);
  }, []);
  return location;
}

export function Link(props: { to: string; query?: Record<string, string | number | undefined>; children: ComponentChildren } & Omit<JSX.HTMLAttributes<HTMLAnchorElement>, "href">) {
  const { to, query, children, ...rest } = props;
  return <a href={href(to, query)} {...rest}>{children}</a>;
}

// --------------------------------------------------------------------------------------------
// Route table entries: every feature (jobs/, transcript/, admin/, ...) exports `routes: RouteDef[]`
// from its routes.ts, and app/routes.ts puts them together.
// --------------------------------------------------------------------------------------------

export interface PageProps {
  /** `:name` parts of the path (`/jobs/:id` on `/jobs/7` → {id: "7"}). */
  params: Record<string, string>;
  query: URLSearchParams;
}

export type Page = ComponentType<PageProps>;

export interface RouteDef {
  /** `/account`, `/jobs/:id`. */
  path: string;
  /** anon: anyone; user: a signed-in user (else sign-in, returning here after); admin: an admin session. */
  access: "anon" | "user" | "admin";
  /** The document title (and what screen readers hear on navigation). */
  title: (strings: Catalogue) => string;
  /** The page itself, or a loader for it (its own chunk: keeps the first load small). */
  component?: Page;
  load?: () => Promise<{ default: Page }>;
  /** Shown in the main navigation with this label. */
  nav?: (strings: Catalogue) => string;
  /** Signed-in users who have not accepted the current terms may still open it (account pages). */
  withoutTerms?: boolean;
}

export function matchRoute(routes: RouteDef[], path: string): { route: RouteDef; params: Record<string, string> } | null {
  const parts = path.split("/").filter(Boolean);
  for (const route of routes) {
    const pattern = route.path.split("/").filter(Boolean);
    if (pattern.length !== parts.length) continue;
    const params: Record<string, string> = {};
    let ok = true;
    pattern.forEach((segment, i) => {
      if (segment.startsWith(":")) params[segment.slice(1)] = decodeURIComponent(parts[i]);
      else if (segment !== parts[i]) ok = false;
    });
    if (ok) return { route, params };
  }
  return null;
}
