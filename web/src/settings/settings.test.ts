import { describe, expect, it } from "vitest";
import { fieldPath, mapIssues } from "./errors";
import { applicationDefaults, checkRules, toForm, toRequest } from "./model";

describe("422 answers at the fields they name", () => {
  it("puts a field's error at that field", () => {
    const errors = mapIssues([
      { type: "greater_than_equal", loc: ["body", "asr_settings", "beam_size"], msg: "Input should be greater than or equal to 1" },
      { type: "less_than", loc: ["body", "vad_settings", "vad_onset"], msg: "Input should be less than 1" },
    ]);
    expect(errors.fields).toEqual({
      "asr_settings.beam_size": ["Input should be greater than or equal to 1"],
      "vad_settings.vad_onset": ["Input should be less than 1"],
    });
    expect(errors.general).toEqual([]);
  });

  it("puts an array element's error at the array", () => {
    expect(fieldPath(["body", "asr_settings", "suppress_tokens", 2])).toBe("asr_settings.suppress_tokens");
    const errors = mapIssues([{ type: "int_parsing", loc: ["body", "asr_settings", "suppress_tokens", 0], msg: "Input should be a valid integer" }]);
    expect(errors.fields["asr_settings.suppress_tokens"]).toEqual(["Input should be a valid integer"]);
  });

  it("puts the model-level rules at the field their message names", () => {
    const errors = mapIssues([
      { type: "value_error", loc: ["body"], msg: "Value error, model tiny.en only supports English; set language to 'en'" },
      { type: "value_error", loc: ["body"], msg: "Value error, alignment must be null when task is 'translate'" },
      { type: "value_error", loc: ["body"], msg: "Value error, translating English audio to English is not possible; use task 'transcribe'" },
      { type: "value_error", loc: ["body", "alignment", "processing"], msg: "Value error, max_line_count requires max_line_width to be set" },
      { type: "value_error", loc: ["body", "diarization"], msg: "Value error, max_speakers must be greater than or equal to min_speakers" },
    ]);
    expect(errors.fields).toEqual({
      model: ["model tiny.en only supports English; set language to 'en'"],
      alignment: ["alignment must be null when task is 'translate'"],
      task: ["translating English audio to English is not possible; use task 'transcribe'"],
      "alignment.processing.max_line_count": ["max_line_count requires max_line_width to be set"],
      "diarization.max_speakers": ["max_speakers must be greater than or equal to min_speakers"],
    });
  });

  it("keeps what names no field as a general message", () => {
    const errors = mapIssues([
      { type: "value_error", loc: ["body"], msg: "Value error, something else entirely" },
      { type: "bool_parsing", loc: ["query", "is_new_default"], msg: "Input should be a valid boolean" },
      { type: "json_invalid", loc: ["body", 12], msg: "JSON decode error" },
    ]);
    expect(errors.fields).toEqual({});
    expect(errors.general).toEqual(["something else entirely", "Input should be a valid boolean", "JSON decode error"]);
  });

  it("skips segments that are no field (a union member's tag)", () => {
    expect(fieldPath(["body", "alignment", "processing", "int", "max_line_width"])).toBe("alignment.processing.max_line_width");
    expect(fieldPath(["body", "language", "enum"])).toBe("language");
  });
});

describe("the settings form", () => {
  it("round-trips the application defaults", () => {
    expect(toRequest(toForm(applicationDefaults()))).toEqual(applicationDefaults());
  });

  it("sends switched-off sections as null and keeps a wrong number as typed, for the server to name", () => {
    const form = toForm(applicationDefaults());
    form.alignmentOn = false;
    form.asr_settings.beam_size = "five";
    form.asr_settings.suppress_tokens = "-1, 50 ,7";
    form.vad_settings.vad_onset = "0,4";
    const request = toRequest(form) as Record<string, Record<string, unknown>>;
    expect(request.alignment).toBeNull();
    expect(request.asr_settings.beam_size).toBe("five");
    expect(request.asr_settings.suppress_tokens).toEqual([-1, 50, 7]);
    expect(request.vad_settings.vad_onset).toBe(0.4);
  });

  it("checks the cross-field rules before sending", () => {
    const form = toForm(applicationDefaults());
    form.model = "base.en";
    form.task = "translate";
    expect(checkRules(form)).toEqual({ language: "englishOnlyModel", alignment: "translateNoAlignment" });
    form.language = "en";
    form.alignmentOn = false;
    expect(checkRules(form)).toEqual({ task: "translateEnglish" });
    form.task = "transcribe";
    form.model = "large";
    form.language = "sw";
    form.alignmentOn = true;
    expect(checkRules(form)).toEqual({ alignment: "alignmentLanguage" });
  });
});
