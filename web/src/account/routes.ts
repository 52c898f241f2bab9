// The account page (its own chunk: not part of the first load).
import type { RouteDef } from "../app/router";

export const routes: RouteDef[] = [
  { path: "/account", access: "user", withoutTerms: true, title: (s) => s.account.title, load: () => import("./AccountPage") },
];
