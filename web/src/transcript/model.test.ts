import { describe, expect, it } from "vitest";
import { displayText, formatTime, markMatches, matchedWords, parseTranscript, plainText, positionAt, searchSegments } from "./model";

const ALIGNED = {
  language: "en",
  segments: [
    {
      start: 0.5, end: 2.0, text: " Hello there, world.",
      words: [
        { word: "Hello", start: 0.5, end: 0.9, score: 0.9 },
        { word: "there,", start: 1.0, end: 1.3, score: 0.8 },
        { word: "world.", start: 1.4, end: 2.0, score: 0.9 },
      ],
    },
    {
      start: 3.0, end: 5.0, text: "In 1990 we met.", speaker: "SPEAKER_01",
      words: [
        { word: "In", start: 3.0, end: 3.2 },
        { word: "1990" },
        { word: "we", start: 4.0, end: 4.2 },
        { word: "met.", start: 4.3, end: 5.0 },
      ],
    },
  ],
  word_segments: [],
};

describe("parseTranscript", () => {
  it("reads segments and words, borrowing times for untimed words", () => {
    const t = parseTranscript(JSON.stringify(ALIGNED));
    expect(t.aligned).toBe(true);
    expect(t.language).toBe("en");
    expect(t.segments.map((s) => s.text)).toEqual(["Hello there, world.", "In 1990 we met."]);
    expect(t.segments[1].words[1]).toEqual({ text: "1990", start: 3.2, end: 4.0, timed: false });
    expect(t.segments[1].speaker).toBe("SPEAKER_01");
  });

  it("accepts an unaligned result and refuses what is not a transcript", () => {
    const t = parseTranscript({ segments: [{ start: 0, end: 1, text: "a" }] });
    expect(t.aligned).toBe(false);
    expect(t.segments[0].words).toEqual([]);
    expect(() => parseTranscript("[]")).toThrow();
    expect(() => parseTranscript("{}")).toThrow();
  });
});

describe("positionAt", () => {
  const t = parseTranscript(ALIGNED);
  it("finds the word being spoken, keeps it through the pause after it, and nothing between segments", () => {
    expect(positionAt(t, 0.6)).toEqual({ segment: 0, word: 0 });
    expect(positionAt(t, 0.95)).toEqual({ segment: 0, word: 0 });
    expect(positionAt(t, 1.5)).toEqual({ segment: 0, word: 2 });
    expect(positionAt(t, 2.5)).toBeNull();
    expect(positionAt(t, 0.1)).toBeNull();
    expect(positionAt(t, 3.5)).toEqual({ segment: 1, word: 1 });
    expect(positionAt(t, 9)).toBeNull();
  });
});

describe("search", () => {
  const t = parseTranscript(ALIGNED);
  it("finds segments ignoring case and accents, and marks the words and text of each match", () => {
    expect(searchSegments(t, "WORLD")).toEqual([0]);
    expect(searchSegments(t, "  ")).toEqual([]);
    expect(searchSegments(parseTranscript({ segments: [{ start: 0, end: 1, text: "Café crème" }] }), "cafe")).toEqual([0]);
    expect(matchedWords(t.segments[0].words, "there, wor")).toEqual([false, true, true]);
    expect(markMatches("Déjà vu, déjà", "deja")).toEqual([
      { text: "Déjà", match: true }, { text: " vu, ", match: false }, { text: "déjà", match: true },
    ]);
    expect(displayText(t.segments[1])).toBe("In 1990 we met.");
  });
});

it("formats times and the copied text", () => {
  expect(formatTime(75.25)).toBe("1:15");
  expect(formatTime(3725)).toBe("1:02:05");
  expect(plainText(parseTranscript(ALIGNED))).toBe("Hello there, world.\n[SPEAKER_01]: In 1990 we met.");
});
