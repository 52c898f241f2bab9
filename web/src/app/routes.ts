// Every page of the app. Each feature lists its own pages in its routes.ts; the first match wins.
import { routes as account } from "../account/routes";
import { routes as admin } from "../admin/routes";
import { routes as auth } from "../auth/routes";
import { routes as jobs } from "../jobs/routes";
import { routes as pages } from "../pages/routes";
import { routes as transcript } from "../transcript/routes";
import type { RouteDef } from "./router";

export const ROUTES: RouteDef[] = [...auth, ...account, ...jobs, ...transcript, ...admin, ...pages];
