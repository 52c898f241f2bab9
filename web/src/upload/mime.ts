// The content type to announce for a file. Browsers leave File.type empty for many media files
// (.opus, .mkv, .m4a on some systems); the server wants audio/* or video/*.

const BY_EXTENSION: Record<string, string> = {
  aac: "audio/aac",
  aif: "audio/aiff",
  aiff: "audio/aiff",
  amr: "audio/amr",
  flac: "audio/flac",
  m4a: "audio/mp4",
  mp3: "audio/mpeg",
  mpga: "audio/mpeg",
  oga: "audio/ogg",
  ogg: "audio/ogg",
  opus: "audio/opus",
  wav: "audio/wav",
  weba: "audio/webm",
  wma: "audio/x-ms-wma",
  "3gp": "video/3gpp",
  avi: "video/x-msvideo",
  flv: "video/x-flv",
  m4v: "video/mp4",
  mkv: "video/x-matroska",
  mov: "video/quicktime",
  mp4: "video/mp4",
  mpeg: "video/mpeg",
  mpg: "video/mpeg",
  ogv: "video/ogg",
  ts: "video/mp2t",
  webm: "video/webm",
  wmv: "video/x-ms-wmv",
};

export function isMediaType(type: string): boolean {
  return /^(audio|video)\//i.test(type);
}

/** audio/* or video/* for the file, or null when neither its type nor its name tells. */
export function mediaType(file: { name: string; type: string }): string | null {
  if (isMediaType(file.type)) return file.type;
  const dot = file.name.lastIndexOf(".");
  const extension = dot >= 0 ? file.name.slice(dot + 1).toLowerCase() : "";
  return BY_EXTENSION[extension] ?? null;
}
