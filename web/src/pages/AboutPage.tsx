// About this instance (/api/about): what Wisp is, its version and source, the notices (site
// banners) in force, and where the imprint and the terms are.
import { Link } from "../app/router";
import { useSession } from "../app/session";
import { useStrings } from "../i18n";

export default function AboutPage() {
  const strings = useStrings().pages;
  const { about, allTerms } = useSession();
  if (!about) return <p role="status">{strings.loading}</p>;
  return (
    <section class="about">
      <h1>{strings.aboutTitle}</h1>
      <p>{about.description}</p>
      <dl class="facts">
        <dt>{strings.version}</dt>
        <dd>{about.version}</dd>
        <dt>{strings.gitHash}</dt>
        <dd><code>{about.git_hash}</code></dd>
        <dt>{strings.sourceCode}</dt>
        <dd><a href={about.source_code} rel="noopener noreferrer">{about.source_code}</a></dd>
        {about.job_retention_in_days != null && (
          <>
            <dt>{strings.retention}</dt>
            <dd>{strings.retentionDays(about.job_retention_in_days)}</dd>
          </>
        )}
      </dl>
      <h2>{strings.noticesTitle}</h2>
      {about.site_banners.length === 0 ? <p>{strings.noNotices}</p> : (
        <ul class="notices">
          {about.site_banners.map((banner) => (
            <li class={`banner${banner.urgency >= 200 ? " urgent" : banner.urgency >= 100 ? " important" : ""}`}
              dangerouslySetInnerHTML={{ __html: banner.html }} />
          ))}
        </ul>
      )}
      <p class="actions">
        {about.imprint && <Link to="/imprint">{strings.imprintTitle}</Link>}
        {allTerms.length > 0 && <Link to="/terms">{strings.termsTitle}</Link>}
        <a href="docs">{strings.apiDocs}</a>
      </p>
    </section>
  );
}
