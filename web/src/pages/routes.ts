// Pages anyone may read: about this instance (with its notices), the imprint, the terms of service.
import type { RouteDef } from "../app/router";

export const routes: RouteDef[] = [
  { path: "/about", access: "anon", title: (s) => s.pages.aboutTitle, load: () => import("./AboutPage") },
  { path: "/imprint", access: "anon", title: (s) => s.pages.imprintTitle, load: () => import("./ImprintPage") },
  { path: "/terms", access: "anon", title: (s) => s.pages.termsTitle, withoutTerms: true, load: () => import("./TermsPage") },
];
