// Scaffold (owned by the jobs feature): the jobs list is the start page ("/", where job mails link).
import { Placeholder } from "../app/Placeholder";
import type { RouteDef } from "../app/router";

export const routes: RouteDef[] = [
  {
    path: "/",
    access: "user",
    title: (s) => s.nav.jobs,
    nav: (s) => s.nav.jobs,
    component: Placeholder,
  },
];
