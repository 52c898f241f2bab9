// A button's or form's async work: busy while it runs, its error kept for <ErrorMessage>.
import { useCallback, useState } from "preact/hooks";

export function useAction<A extends unknown[], R>(work: (...args: A) => Promise<R>) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const run = useCallback(async (...args: A): Promise<R | undefined> => {
    setBusy(true);
    setError(null);
    try {
      return await work(...args);
    } catch (caught) {
      setError(caught);
      return undefined;
    } finally {
      setBusy(false);
    }
  }, [work]);
  return { run, busy, error, setError };
}
