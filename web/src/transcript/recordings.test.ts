import { describe, expect, it } from "vitest";

import { forgetRecording, onRecordingsChange, recordingFor, rememberRecording } from "./recordings";

describe("recordings", () => {
  it("tells listeners only when a recording arrives or goes, not when it is remembered again", () => {
    const heard: number[] = [];
    const stop = onRecordingsChange((jobId) => heard.push(jobId));
    const file = new Blob(["audio"]);
    rememberRecording(7, file);
    rememberRecording(7, file); // the upload panel repeats this on every progress update
    expect(heard).toEqual([7]);
    expect(recordingFor(7)).toBe(file);
    forgetRecording(7);
    expect(heard).toEqual([7, 7]);
    stop();
  });
});
