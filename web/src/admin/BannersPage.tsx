// Site banners (spec §3.7): the current ones with a preview, adding one, deleting one. Every page
// shows them (app/Layout.tsx), highest urgency first; from 100 the text stands out, from 200 the
// background too.
import { useCallback, useEffect, useState } from "preact/hooks";
import { api, type Schemas } from "../api/client";
import { ErrorMessage } from "../app/ErrorView";
import { useSession } from "../app/session";
import { useAction } from "../app/useAction";
import { useStrings } from "../i18n";
import { AdminTabs } from "./AdminTabs";

type Banner = Schemas["SiteBannerResponse"];

function bannerClass(urgency: number): string {
  return `banner${urgency >= 200 ? " urgent" : urgency >= 100 ? " important" : ""}`;
}

export default function BannersPage() {
  const strings = useStrings().admin;
  const session = useSession();
  const [banners, setBanners] = useState<Banner[] | null>(null);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [html, setHtml] = useState("");
  const [urgency, setUrgency] = useState("0");

  const reload = useCallback(async () => {
    try {
      setBanners((await api("get", "/api/about")).site_banners);
      setLoadError(null);
    } catch (error) {
      setLoadError(error);
    }
  }, []);
  useEffect(() => void reload(), [reload]);

  const add = useAction(async () => {
    await api("post", "/api/admins/add_site_banner", { json: { html, urgency: Number(urgency) || 0 } });
    setHtml("");
    setUrgency("0");
    await Promise.all([reload(), session.refresh()]);
  });
  const remove = useAction(async (banner: Banner) => {
    if (!window.confirm(strings.deleteBannerConfirm)) return;
    await api("delete", "/api/admins/delete_site_banner", { query: { banner_id: banner.id } });
    await Promise.all([reload(), session.refresh()]);
  });

  return (
    <section class="admin">
      <h1>{strings.title}</h1>
      <AdminTabs current="/admin/banners" />
      <h2>{strings.bannersTitle}</h2>
      <ErrorMessage error={loadError} onRetry={() => void reload()} />
      <ErrorMessage error={remove.error} onDismiss={() => remove.setError(null)} />
      {banners !== null && banners.length === 0 && <p>{strings.noBanners}</p>}
      {banners !== null && banners.length > 0 && (
        <ul class="banner-list">
          {banners.map((banner) => (
            <li data-banner={banner.id}>
              <div class={bannerClass(banner.urgency)} dangerouslySetInnerHTML={{ __html: banner.html }} />
              <p class="actions">
                <span class="hint">{strings.urgencyIs(banner.urgency)}</span>
                <button type="button" class="danger" disabled={remove.busy} onClick={() => void remove.run(banner)}>
                  {strings.deleteBanner}
                </button>
              </p>
            </li>
          ))}
        </ul>
      )}
      <h2>{strings.addBannerTitle}</h2>
      <form class="narrow" onSubmit={(e) => {
        e.preventDefault();
        void add.run();
      }}>
        <div class="field">
          <label for="banner-html">{strings.bannerHtml}</label>
          <textarea id="banner-html" rows={3} required value={html} onInput={(e) => setHtml((e.target as HTMLTextAreaElement).value)} style="width:100%" />
          <p class="hint">{strings.bannerHtmlHint}</p>
        </div>
        <div class="field">
          <label for="banner-urgency">{strings.urgency}</label>
          <input id="banner-urgency" type="number" step="1" value={urgency} onInput={(e) => setUrgency((e.target as HTMLInputElement).value)} />
          <p class="hint">{strings.urgencyHint}</p>
        </div>
        {html.trim() && (
          <div class="field">
            <span class="hint">{strings.preview}</span>
            <div class={bannerClass(Number(urgency) || 0)} dangerouslySetInnerHTML={{ __html: html }} />
          </div>
        )}
        <ErrorMessage error={add.error} onDismiss={() => add.setError(null)} />
        <button type="submit" disabled={add.busy}>{strings.addBanner}</button>
      </form>
    </section>
  );
}
