// Sign-in and the pages mail links open. Paths of the mail links are fixed by the API (spec §8).
import type { RouteDef } from "../app/router";
import { ActivatePage, RequestResetPage, ResetPasswordPage, SignUpPage } from "./AccountLinks";
import { AdminSignInPage, OidcAcceptPage, SignInPage } from "./SignIn";

export const routes: RouteDef[] = [
  { path: "/auth/login", access: "anon", title: (s) => s.auth.signInTitle, component: SignInPage },
  { path: "/auth/admin", access: "anon", title: (s) => s.auth.adminSignInTitle, component: AdminSignInPage },
  { path: "/auth/signup", access: "anon", title: (s) => s.auth.signupTitle, component: SignUpPage },
  { path: "/auth/request-reset", access: "anon", title: (s) => s.auth.requestResetTitle, component: RequestResetPage },
  { path: "/auth/local/reset-password", access: "anon", title: (s) => s.auth.resetTitle, component: ResetPasswordPage },
  { path: "/local/activate", access: "anon", title: (s) => s.auth.activateTitle, component: ActivatePage },
  { path: "/auth/oidc-accept", access: "anon", title: (s) => s.auth.oidcTitle, component: OidcAcceptPage },
];
