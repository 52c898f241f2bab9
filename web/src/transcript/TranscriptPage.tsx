// A finished job's transcript: its segments with their times, searchable, copyable, downloadable in
// the five formats, and, when this tab has the recording (it uploaded it, or the user opens the
// file again), played in sync: the word being spoken is highlighted and a click on a word plays
// from there. Without word timings (the job was not aligned) a segment's time does the same.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { api, type Schemas } from "../api/client";
import { ErrorMessage } from "../app/ErrorView";
import { Link, type PageProps } from "../app/router";
import { useAction } from "../app/useAction";
import { useStrings } from "../i18n";
import { FORMATS, downloadName, fetchTranscript, readUrl, save, type Format } from "./formats";
import {
  formatTime, markMatches, matchedWords, parseTranscript, plainText, positionAt, searchSegments,
  type Position, type Segment, type Transcript,
} from "./model";
import { onRecordingsChange, recordingFor, rememberRecording } from "./recordings";
import "./transcript.css";

type Job = Schemas["JobInfoResponse"];

type Loaded =
  | { state: "loading" }
  | { state: "failed"; error: unknown }
  | { state: "missing" }
  | { state: "unfinished"; job: Job }
  | { state: "too-big"; job: Job; url: string }
  | { state: "ready"; job: Job; transcript: Transcript };

async function load(jobId: number): Promise<Loaded> {
  const [job] = await api("get", "/api/jobs/info", { query: { job_ids: [jobId] } });
  if (!job) return { state: "missing" };
  if (job.step !== "success" && job.step !== "downloaded") return { state: "unfinished", job };
  const fetched = await fetchTranscript(jobId, "as_json");
  const text = fetched.kind === "text" ? fetched.text : await readUrl(fetched.url);
  if (text === null) return { state: "too-big", job, url: fetched.kind === "url" ? fetched.url : "" };
  return { state: "ready", job, transcript: parseTranscript(text) };
}

export default function TranscriptPage(props: PageProps) {
  const strings = useStrings().transcript;
  const jobId = Number(props.params.id);
  const [loaded, setLoaded] = useState<Loaded>({ state: "loading" });
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    if (!Number.isInteger(jobId) || jobId <= 0) {
      setLoaded({ state: "missing" });
      return;
    }
    let current = true;
    setLoaded({ state: "loading" });
    load(jobId).then(
      (result) => current && setLoaded(result),
      (error: unknown) => current && setLoaded({ state: "failed", error }),
    );
    return () => {
      current = false;
    };
  }, [jobId, attempt]);

  switch (loaded.state) {
    case "loading":
      return <p role="status">{strings.loading}</p>;
    case "failed":
      return <ErrorMessage error={loaded.error} onRetry={() => setAttempt((n) => n + 1)} />;
    case "missing":
      return <Missing />;
    case "unfinished":
      return (
        <section class="transcript">
          <h1>{loaded.job.file_name}</h1>
          <p role="status">{loaded.job.step === "failed" ? strings.failed(loaded.job.error_msg ?? "") : strings.notYet}</p>
          <p><Link to="/">{strings.backToJobs}</Link></p>
        </section>
      );
    case "too-big":
      return (
        <section class="transcript">
          <h1>{loaded.job.file_name}</h1>
          <p>{strings.tooBig}</p>
          <Downloads job={loaded.job} />
        </section>
      );
    case "ready":
      return <Viewer job={loaded.job} transcript={loaded.transcript} />;
  }
}

function Missing() {
  const strings = useStrings().transcript;
  return (
    <section class="transcript">
      <p role="alert">{strings.missing}</p>
      <p><Link to="/">{strings.backToJobs}</Link></p>
    </section>
  );
}

function Downloads(props: { job: Job }) {
  const strings = useStrings().transcript;
  const [done, setDone] = useState<string | null>(null);
  const download = useAction(async (format: Format) => {
    const fetched = await fetchTranscript(props.job.id, format.type);
    const name = downloadName(props.job.file_name, props.job.id, format);
    save(fetched, name, format.mime);
    setDone(name);
  });
  return (
    <div class="transcript-downloads" role="group" aria-label={strings.download}>
      <span>{strings.download}</span>
      {FORMATS.map((format) => (
        <button type="button" class="secondary" disabled={download.busy} onClick={() => void download.run(format)}
          aria-label={strings.downloadAs(format.extension.toUpperCase())}>
          {format.extension.toUpperCase()}
        </button>
      ))}
      {done && <span role="status" class="muted">{strings.saved(done)}</span>}
      <ErrorMessage error={download.error} onDismiss={() => download.setError(null)} />
    </div>
  );
}

/** The recording of `jobId` as an object URL while this tab has it. */
function useRecordingUrl(jobId: number): [string | null, string | null] {
  const [blob, setBlob] = useState<Blob | undefined>(() => recordingFor(jobId));
  useEffect(() => {
    setBlob(recordingFor(jobId));
    return onRecordingsChange((changed) => {
      if (changed === jobId) setBlob(recordingFor(jobId));
    });
  }, [jobId]);
  const url = useMemo(() => (blob ? URL.createObjectURL(blob) : null), [blob]);
  useEffect(() => () => {
    if (url) URL.revokeObjectURL(url);
  }, [url]);
  const name = blob && "name" in blob ? String((blob as File).name) : null;
  return [url, name];
}

function Viewer(props: { job: Job; transcript: Transcript }) {
  const strings = useStrings().transcript;
  const { job, transcript } = props;
  const [query, setQuery] = useState("");
  const [matchIndex, setMatchIndex] = useState(0);
  const [follow, setFollow] = useState(true);
  const [copied, setCopied] = useState(false);
  const [audioUrl, recordingName] = useRecordingUrl(job.id);
  const audio = useRef<HTMLAudioElement>(null);
  const list = useRef<HTMLOListElement>(null);
  const followRef = useRef(follow);
  followRef.current = follow;

  const matches = useMemo(() => searchSegments(transcript, query), [transcript, query]);
  useEffect(() => setMatchIndex(0), [query]);
  useEffect(() => {
    if (matches.length === 0) return;
    const target = list.current?.querySelector(`[data-seg="${matches[Math.min(matchIndex, matches.length - 1)]}"]`);
    target?.scrollIntoView({ block: "center" });
  }, [matches, matchIndex]);

  // highlight the spoken word without re-rendering the list: toggle two classes on the elements
  useEffect(() => {
    const element = audio.current;
    if (!element || !list.current) return;
    let shown: Position | null = null;
    let frame = 0;
    const mark = (position: Position | null, on: boolean) => {
      if (!position || !list.current) return;
      list.current.querySelector(`li[data-seg="${position.segment}"]`)?.classList.toggle("is-current", on);
      if (position.word >= 0) {
        list.current.querySelector(`[data-seg="${position.segment}"][data-word="${position.word}"]`)?.classList.toggle("is-spoken", on);
      }
    };
    const update = () => {
      const position = positionAt(transcript, element.currentTime);
      if (position?.segment === shown?.segment && position?.word === shown?.word) {
        mark(position, true); // again: a re-render of the segment may have reset its classes
        return;
      }
      mark(shown, false);
      mark(position, true);
      if (position && followRef.current && position.segment !== shown?.segment && !element.paused) {
        list.current?.querySelector(`li[data-seg="${position.segment}"]`)?.scrollIntoView({ block: "nearest" });
      }
      shown = position;
    };
    const loop = () => {
      update();
      frame = element.paused ? 0 : requestAnimationFrame(loop);
    };
    const start = () => {
      if (!frame) frame = requestAnimationFrame(loop);
    };
    element.addEventListener("play", start);
    element.addEventListener("seeked", update);
    element.addEventListener("timeupdate", update);
    update();
    return () => {
      cancelAnimationFrame(frame);
      element.removeEventListener("play", start);
      element.removeEventListener("seeked", update);
      element.removeEventListener("timeupdate", update);
      mark(shown, false);
    };
  }, [audioUrl, transcript]);

  const seek = (time: number) => {
    const element = audio.current;
    if (!element) return;
    element.currentTime = time;
    void element.play().catch(() => undefined);
  };

  const onListClick = (event: MouseEvent) => {
    const target = (event.target as HTMLElement).closest<HTMLElement>("[data-start]");
    if (target && audio.current) seek(Number(target.dataset.start));
  };

  const copy = async () => {
    const text = plainText(transcript);
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      // no clipboard permission (an embedded page, an old browser): the selection way
      const area = document.createElement("textarea");
      area.value = text;
      document.body.appendChild(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
    setCopied(true);
    setTimeout(() => setCopied(false), 2000);
  };

  const shownMatch = matches.length ? Math.min(matchIndex, matches.length - 1) : -1;

  return (
    <section class="transcript">
      <h1>{job.file_name}</h1>
      <p class="muted">
        {strings.summary(transcript.segments.length, transcript.language ?? job.settings.language ?? "?")}
        {" · "}
        <Link to="/">{strings.backToJobs}</Link>
      </p>

      <div class="transcript-player">
        {audioUrl ? (
          <>
            <audio ref={audio} src={audioUrl} controls preload="auto" aria-label={strings.player} />
            <label class="inline">
              <input type="checkbox" checked={follow} onChange={(e) => setFollow((e.target as HTMLInputElement).checked)} />
              {strings.follow}
            </label>
            {recordingName && <span class="muted">{strings.playing(recordingName)}</span>}
          </>
        ) : (
          <label>
            {strings.openRecording}
            <input type="file" accept="audio/*,video/*" onChange={(e) => {
              const file = (e.target as HTMLInputElement).files?.[0];
              if (file) rememberRecording(job.id, file);
            }} />
          </label>
        )}
        {!transcript.aligned && <p class="muted">{strings.notAligned}</p>}
      </div>

      <div class="transcript-tools">
        <label class="search">
          {strings.search}
          <input type="search" value={query} onInput={(e) => setQuery((e.target as HTMLInputElement).value)}
            onKeyDown={(e) => {
              if (e.key === "Enter" && matches.length) setMatchIndex((i) => (i + (e.shiftKey ? matches.length - 1 : 1)) % matches.length);
            }} />
        </label>
        {query.trim() && (
          <span role="status" class="matches">
            {matches.length ? strings.matchOf(shownMatch + 1, matches.length) : strings.noMatches}
          </span>
        )}
        {matches.length > 1 && (
          <>
            <button type="button" class="secondary" onClick={() => setMatchIndex((i) => (i + matches.length - 1) % matches.length)}>{strings.previous}</button>
            <button type="button" class="secondary" onClick={() => setMatchIndex((i) => (i + 1) % matches.length)}>{strings.next}</button>
          </>
        )}
        <button type="button" class="secondary" onClick={() => void copy()}>{copied ? strings.copied : strings.copy}</button>
      </div>
      <Downloads job={job} />

      <ol class="segments" ref={list} onClick={onListClick} aria-label={strings.text}>
        {transcript.segments.map((segment) => (
          <SegmentItem segment={segment} query={query} selected={matches[shownMatch] === segment.index} playable={!!audioUrl} />
        ))}
      </ol>
    </section>
  );
}

function SegmentItem(props: { segment: Segment; query: string; selected: boolean; playable: boolean }) {
  const strings = useStrings().transcript;
  const { segment, query } = props;
  const marked = segment.words.length ? matchedWords(segment.words, query) : [];
  return (
    <li data-seg={segment.index} class={props.selected ? "is-match" : undefined}>
      <button type="button" class="time" data-start={segment.start} disabled={!props.playable}
        title={props.playable ? strings.playFrom(formatTime(segment.start)) : undefined}>
        {formatTime(segment.start)}
      </button>
      {segment.speaker && <span class="speaker">{segment.speaker}</span>}
      <p>
        {segment.words.length
          ? segment.words.map((word, i) => (
            <>
              {i > 0 && " "}
              <span class={`word${marked[i] ? " match" : ""}${props.playable ? " playable" : ""}`} data-seg={segment.index}
                data-word={i} data-start={props.playable ? word.start : undefined}>{word.text.trim()}</span>
            </>
          ))
          : markMatches(segment.text, query).map((part) => (part.match ? <mark>{part.text}</mark> : part.text))}
      </p>
    </li>
  );
}
