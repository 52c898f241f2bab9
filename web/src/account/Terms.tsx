// Terms of service: the gate a signed-in user meets while some terms are not accepted at their
// current version (the jobs routes answer 403 until then), and the account page's section.
import { api } from "../api/client";
import { ErrorMessage } from "../app/ErrorView";
import { useSession, type Terms } from "../app/session";
import { useAction } from "../app/useAction";
import { useStrings } from "../i18n";

export function TermsList(props: { terms: Terms[] }) {
  const strings = useStrings();
  const session = useSession();
  const accept = useAction(async (terms: Terms) => {
    await api("post", "/api/users/accept_tos", { query: { tos_id: Number(terms.id), tos_version: terms.version } });
    await session.refresh();
  });
  return (
    <>
      <ErrorMessage error={accept.error} />
      {props.terms.map((terms) => (
        <article class="terms">
          <h3>{terms.name}</h3>
          {terms.accepted > 0 && terms.accepted < terms.version && <p>{strings.account.termsNewVersion(terms.accepted, terms.version)}</p>}
          <div class="tos" dangerouslySetInnerHTML={{ __html: terms.html }} />
          {terms.accepted >= terms.version
            ? <p>{strings.account.termsAccepted(terms.accepted)}</p>
            : <button type="button" disabled={accept.busy} onClick={() => void accept.run(terms)}>{strings.account.acceptTerms(terms.name)}</button>}
        </article>
      ))}
    </>
  );
}

export function TermsGate() {
  const strings = useStrings();
  const session = useSession();
  return (
    <section>
      <h1>{strings.account.termsTitle}</h1>
      <p>{strings.account.termsPending}</p>
      <TermsList terms={session.pendingTerms} />
    </section>
  );
}
