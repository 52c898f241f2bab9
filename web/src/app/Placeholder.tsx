import { useStrings } from "../i18n";

/** A page that is not built yet (features replace these). */
export function Placeholder() {
  const strings = useStrings();
  return <section><h1>{strings.app.placeholder}</h1></section>;
}
