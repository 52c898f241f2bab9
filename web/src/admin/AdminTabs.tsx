// The administration's own navigation: runners, site banners, mail to all users.
import { Link } from "../app/router";
import { useStrings } from "../i18n";
import "./admin.css";

export const ADMIN_PAGES = [
  { path: "/admin", label: "runners" },
  { path: "/admin/banners", label: "banners" },
  { path: "/admin/mail", label: "mail" },
] as const;

export function AdminTabs(props: { current: (typeof ADMIN_PAGES)[number]["path"] }) {
  const strings = useStrings().admin;
  return (
    <nav aria-label={strings.title} class="admin-tabs">
      <ul class="actions">
        {ADMIN_PAGES.map((page) => (
          <li><Link to={page.path} aria-current={page.path === props.current ? "page" : undefined}>{strings.tabs[page.label]}</Link></li>
        ))}
      </ul>
    </nav>
  );
}
