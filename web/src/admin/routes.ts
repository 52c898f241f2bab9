// The administration (admin sessions only): runners, site banners, mail to all users.
import type { RouteDef } from "../app/router";

export const routes: RouteDef[] = [
  {
    path: "/admin",
    access: "admin",
    title: (s) => s.admin.title,
    nav: (s) => s.nav.admin,
    load: () => import("./RunnersPage"),
  },
  { path: "/admin/banners", access: "admin", title: (s) => s.admin.bannersTitle, load: () => import("./BannersPage") },
  { path: "/admin/mail", access: "admin", title: (s) => s.admin.mailTitle, load: () => import("./MailPage") },
];
