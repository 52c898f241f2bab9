// Shapes of Wisp's direct-upload extension (README "Direct uploads"; chalicelib/schemas/jobs.py).

export interface UploadPartUrl {
  part_number: number;
  url: string;
}

export interface UploadedPart {
  part_number: number;
  etag: string;
  size: number;
}

/** POST /api/wisp/uploads */
export interface StartUploadRequest {
  file_name: string;
  content_type: string;
  size: number;
}

export interface StartUploadResponse {
  upload_id: string;
  key: string;
  part_size: number;
  parts: UploadPartUrl[];
}

/** GET /api/wisp/uploads/{upload_id}/parts */
export interface UploadPartsResponse {
  upload_id: string;
  key: string;
  part_size: number;
  uploaded: UploadedPart[];
  /** fresh URLs for the parts S3 does not have yet */
  parts: UploadPartUrl[];
}

export interface CompletedPart {
  part_number: number;
  etag: string;
}

/** The four calls of the extension; `complete` answers the new job's id. */
export interface UploadApi {
  start(request: StartUploadRequest): Promise<StartUploadResponse>;
  parts(uploadId: string): Promise<UploadPartsResponse>;
  complete(uploadId: string, parts: CompletedPart[], jobSettingsId?: number): Promise<number>;
  cancel(uploadId: string): Promise<void>;
}

export interface PutOptions {
  signal: AbortSignal;
  /** bytes of this part sent so far */
  onProgress(loaded: number): void;
}

/** PUTs one part to its pre-signed URL and answers the response's ETag header. */
export interface PartTransport {
  put(url: string, body: Blob, options: PutOptions): Promise<string>;
}

/** What the engine needs of a File (a File is one). */
export interface UploadFile {
  readonly name: string;
  readonly size: number;
  readonly lastModified: number;
  readonly type: string;
  slice(start?: number, end?: number): Blob;
}
