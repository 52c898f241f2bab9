// The jobs feature's pages: the jobs list with the upload panel is the start page ("/", where job
// mails link); the default job settings have their own page.
import type { RouteDef } from "../app/router";

export const routes: RouteDef[] = [
  {
    path: "/",
    access: "user",
    title: (s) => s.nav.jobs,
    nav: (s) => s.nav.jobs,
    load: () => import("./JobsPage"),
  },
  {
    path: "/settings",
    access: "user",
    title: (s) => s.settings.title,
    nav: (s) => s.settings.nav,
    load: () => import("../settings/SettingsPage"),
  },
];
