// The transcript viewer's page: `#/jobs/<id>/transcript` (the jobs list links here).
import type { RouteDef } from "../app/router";

export const transcriptPath = (jobId: number) => `/jobs/${jobId}/transcript`;

export const routes: RouteDef[] = [
  {
    path: "/jobs/:id/transcript",
    access: "user",
    title: (s) => s.transcript.title,
    load: () => import("./TranscriptPage"),
  },
];
