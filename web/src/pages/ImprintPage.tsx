// The operator's imprint (config `imprint`, served by /api/about).
import { useSession } from "../app/session";
import { useStrings } from "../i18n";

export default function ImprintPage() {
  const strings = useStrings().pages;
  const { about } = useSession();
  if (!about) return <p role="status">{strings.loading}</p>;
  const imprint = about.imprint;
  return (
    <section class="imprint-page">
      <h1>{strings.imprintTitle}</h1>
      {!imprint ? <p>{strings.noImprint}</p> : (
        <>
          <p><strong>{imprint.name}</strong></p>
          {imprint.email && <p><a href={`mailto:${imprint.email}`}>{imprint.email}</a></p>}
          {imprint.url && <p><a href={imprint.url} rel="noopener noreferrer">{strings.imprintElsewhere}</a></p>}
          {/* written by this instance's operator in its configuration */}
          {imprint.additional_imprint_html && <div dangerouslySetInnerHTML={{ __html: imprint.additional_imprint_html }} />}
        </>
      )}
    </section>
  );
}
