// The terms of service of this instance, each at its current version; for a signed-in user,
// whether they accepted it (accepting happens on the account page and at sign-in).
import { Link } from "../app/router";
import { useSession } from "../app/session";
import { useStrings } from "../i18n";

export default function TermsPage() {
  const strings = useStrings().pages;
  const { about, allTerms, user } = useSession();
  if (!about) return <p role="status">{strings.loading}</p>;
  return (
    <section class="terms-page">
      <h1>{strings.termsTitle}</h1>
      {allTerms.length === 0 && <p>{strings.noTerms}</p>}
      {allTerms.map((terms) => (
        <article data-terms={terms.id}>
          <h2>{terms.name}</h2>
          <p class="hint">
            {strings.termsVersion(terms.version)}
            {user && " · "}
            {user && (terms.accepted >= terms.version
              ? strings.termsAccepted
              : <Link to="/account">{strings.termsToAccept}</Link>)}
          </p>
          {/* written by this instance's operator in its configuration */}
          <div dangerouslySetInnerHTML={{ __html: terms.html }} />
        </article>
      ))}
    </section>
  );
}
