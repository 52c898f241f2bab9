// A plain-text mail to every user (spec §3.7): each address once, as Bcc.
import { useState } from "preact/hooks";
import { api } from "../api/client";
import { ErrorMessage } from "../app/ErrorView";
import { useAction } from "../app/useAction";
import { useStrings } from "../i18n";
import { AdminTabs } from "./AdminTabs";

export default function MailPage() {
  const strings = useStrings().admin;
  const [subject, setSubject] = useState("");
  const [body, setBody] = useState("");
  const [sent, setSent] = useState(false);
  const send = useAction(async () => {
    if (!window.confirm(strings.mailConfirm)) return;
    await api("post", "/api/admins/send_email_to_all_users", { json: { subject, body } });
    setSent(true);
    setSubject("");
    setBody("");
  });
  return (
    <section class="admin">
      <h1>{strings.title}</h1>
      <AdminTabs current="/admin/mail" />
      <h2>{strings.mailTitle}</h2>
      <p class="hint">{strings.mailIntro}</p>
      <form class="narrow" onSubmit={(e) => {
        e.preventDefault();
        setSent(false);
        void send.run();
      }}>
        <div class="field">
          <label for="mail-subject">{strings.mailSubject}</label>
          <input id="mail-subject" required value={subject} onInput={(e) => setSubject((e.target as HTMLInputElement).value)} />
        </div>
        <div class="field">
          <label for="mail-body">{strings.mailBody}</label>
          <textarea id="mail-body" rows={8} required value={body} onInput={(e) => setBody((e.target as HTMLTextAreaElement).value)} style="width:100%" />
        </div>
        <ErrorMessage error={send.error} onDismiss={() => send.setError(null)} />
        {sent && <p class="success" role="status">{strings.mailSent}</p>}
        <button type="submit" disabled={send.busy}>{strings.sendMail}</button>
      </form>
    </section>
  );
}
