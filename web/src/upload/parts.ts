// Splitting a file into the parts of an S3 multipart upload: part n (1-based) is the bytes
// [(n-1)·partSize, n·partSize) of the file, the last one possibly shorter.

export interface PartRange {
  partNumber: number;
  start: number;
  /** exclusive */
  end: number;
}

export function partCount(size: number, partSize: number): number {
  if (!(partSize > 0)) throw new RangeError("partSize must be positive");
  return Math.max(1, Math.ceil(size / partSize));
}

export function partRange(size: number, partSize: number, partNumber: number): PartRange {
  const count = partCount(size, partSize);
  if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > count) {
    throw new RangeError(`part ${partNumber} is outside 1..${count}`);
  }
  const start = (partNumber - 1) * partSize;
  return { partNumber, start, end: Math.min(size, start + partSize) };
}

export function partRanges(size: number, partSize: number): PartRange[] {
  const ranges: PartRange[] = [];
  for (let n = 1; n <= partCount(size, partSize); n++) ranges.push(partRange(size, partSize, n));
  return ranges;
}

export function partLength(range: PartRange): number {
  return range.end - range.start;
}
