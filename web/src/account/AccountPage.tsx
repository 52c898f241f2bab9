// The account page: who you are, API tokens (created with a name and shown once, listed, revoked),
// e-mail and password (local accounts), terms of service, and deleting the account.
import { useCallback, useEffect, useState } from "preact/hooks";
import { api, ApiError, type Schemas } from "../api/client";
import { ErrorMessage } from "../app/ErrorView";
import { Link } from "../app/router";
import { useSession } from "../app/session";
import { useAction } from "../app/useAction";
import { Field, Status, value } from "../auth/forms";
import { useStrings } from "../i18n";
import { TermsList } from "./Terms";

type Token = Schemas["TokenInfoResponse"];

export default function AccountPage() {
  const strings = useStrings();
  const session = useSession();
  const user = session.user;
  const s = strings.account;
  // signing out here clears the user one render before the router leaves this page
  if (!user) return null;
  return (
    <>
      <h1>{s.title}</h1>
      <section class="card" aria-labelledby="account-info">
        <h2 id="account-info">{s.info}</h2>
        <dl class="facts">
          <dt>{s.emailLabel}</dt><dd>{user.email}</dd>
          <dt>{s.provider}</dt><dd>{user.provider_name}</dd>
          <dt>{s.userType}</dt><dd>{user.user_type}</dd>
          <dt>{s.verified}</dt><dd>{user.is_verified ? s.yes : s.no}</dd>
        </dl>
        <p><Link to="/settings">{s.jobSettingsLink}</Link></p>
      </section>
      {session.allTerms.length > 0 && (
        <section class="card" aria-labelledby="account-terms">
          <h2 id="account-terms">{s.termsTitle}</h2>
          <TermsList terms={session.allTerms} />
        </section>
      )}
      <Tokens />
      {user.user_type === "local" ? (<><ChangeEmail /><ChangePassword /></>) : <p>{s.localOnly}</p>}
      <DeleteAccount />
    </>
  );
}

function Tokens() {
  const strings = useStrings();
  const session = useSession();
  const s = strings.account;
  const [tokens, setTokens] = useState<Token[] | null>(null);
  const [name, setName] = useState("");
  const [created, setCreated] = useState<{ name: string; secret: string } | null>(null);
  const [copied, setCopied] = useState(false);
  const load = useAction(useCallback(async () => setTokens(await api("get", "/api/users/get_all_token_info")), []));
  useEffect(() => {
    void load.run();
  }, []);
  const create = useAction(async () => {
    const secret = await api("post", "/api/users/get_new_api_token", { query: { name } });
    setCreated({ name, secret: String(secret) });
    setCopied(false);
    setName("");
    await load.run();
  });
  const revoke = useAction(async (token: Token) => {
    if (!window.confirm(s.revokeConfirm(token.name))) return;
    await api("delete", "/api/users/invalidate_token", { query: { token_id: token.id } });
    await load.run();
  });
  const revokeAll = useAction(async () => {
    if (!window.confirm(s.revokeAllConfirm)) return;
    await api("delete", "/api/users/invalidate_all_tokens");
    await session.refresh();
  });
  const when = (iso: string | null) => (iso ? new Date(iso).toLocaleString() : s.never);
  return (
    <section class="card" aria-labelledby="account-tokens">
      <h2 id="account-tokens">{s.tokensTitle}</h2>
      <p>{s.tokensIntro}</p>
      <ErrorMessage error={load.error ?? create.error ?? revoke.error ?? revokeAll.error} />
      {created && (
        <div class="success" role="status">
          <p>{s.newTokenShown}</p>
          <code class="secret" aria-label={created.name}>{created.secret}</code>
          <p>
            <button type="button" class="secondary" onClick={async () => {
              try {
                await navigator.clipboard.writeText(created.secret);
                setCopied(true);
              } catch {
                // no clipboard access (an insecure origin): the token is on screen to select
              }
            }}>{copied ? s.copied : s.copy}</button>
          </p>
        </div>
      )}
      <form class="inline" onSubmit={(e) => { e.preventDefault(); void create.run(); }}>
        <Field label={s.tokenName} required value={name} onInput={(e) => setName(value(e))} />
        <button type="submit" disabled={create.busy}>{s.createToken}</button>
      </form>
      {tokens === null ? <p role="status">{strings.app.loading}</p> : tokens.length === 0 ? <p>{s.noTokens}</p> : (
        <table>
          <thead>
            <tr><th scope="col">{s.tokenColName}</th><th scope="col">{s.tokenColKind}</th><th scope="col">{s.tokenColUsed}</th>
              <th scope="col">{s.tokenColExpires}</th><th scope="col">{s.tokenColActions}</th></tr>
          </thead>
          <tbody>
            {tokens.map((token) => (
              <tr>
                <th scope="row">{token.name}</th>
                <td>{token.explicit ? s.kindApi : s.kindSession}{token.admin_privileges && ` (${s.kindAdmin})`}</td>
                <td>{when(token.last_usage)}</td>
                <td>{when(token.expires_at)}</td>
                <td>
                  <button type="button" class="secondary" disabled={revoke.busy} aria-label={`${s.revoke}: ${token.name}`}
                    onClick={() => void revoke.run(token)}>{s.revoke}</button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <p><button type="button" class="secondary" disabled={revokeAll.busy} onClick={() => void revokeAll.run()}>{s.revokeAll}</button></p>
    </section>
  );
}

/** 403 from a password-confirmed call means the password was wrong (spec §1.5). */
function wrongPassword(error: unknown, message: string): unknown {
  return error instanceof ApiError && error.status === 403 ? new ApiError(403, message) : error;
}

function ChangeEmail() {
  const strings = useStrings();
  const s = strings.account;
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [done, setDone] = useState(false);
  const change = useAction(async () => {
    try {
      await api("post", "/api/local-account/change_user_email", { json: { new_email: email, password } });
    } catch (error) {
      throw wrongPassword(error, s.wrongPassword);
    }
    setDone(true);
    setPassword("");
  });
  return (
    <section class="card" aria-labelledby="account-email">
      <h2 id="account-email">{s.changeEmailTitle}</h2>
      <ErrorMessage error={change.error} />
      {done && <Status>{s.changeEmailDone}</Status>}
      <form onSubmit={(e) => { e.preventDefault(); void change.run(); }}>
        <Field label={s.newEmail} type="email" autocomplete="email" required value={email} onInput={(e) => setEmail(value(e))} />
        <Field label={s.currentPassword} type="password" autocomplete="current-password" required value={password}
          onInput={(e) => setPassword(value(e))} />
        <button type="submit" disabled={change.busy}>{s.changeEmail}</button>
      </form>
    </section>
  );
}

function ChangePassword() {
  const strings = useStrings();
  const s = strings.account;
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [repeat, setRepeat] = useState("");
  const [done, setDone] = useState(false);
  const change = useAction(async () => {
    if (next !== repeat) throw new Error(strings.auth.passwordsDiffer);
    try {
      await api("post", "/api/local-account/change_user_password", { json: { new_password: next, password: current } });
    } catch (error) {
      throw wrongPassword(error, s.wrongPassword);
    }
    setDone(true);
    setCurrent("");
    setNext("");
    setRepeat("");
  });
  return (
    <section class="card" aria-labelledby="account-password">
      <h2 id="account-password">{s.changePasswordTitle}</h2>
      <ErrorMessage error={change.error} />
      {done && <Status>{s.changePasswordDone}</Status>}
      <form onSubmit={(e) => { e.preventDefault(); void change.run(); }}>
        <Field label={s.currentPassword} type="password" autocomplete="current-password" required value={current}
          onInput={(e) => setCurrent(value(e))} />
        <Field label={strings.auth.newPassword} type="password" autocomplete="new-password" required minLength={12}
          hint={strings.auth.passwordRule} value={next} onInput={(e) => setNext(value(e))} />
        <Field label={strings.auth.repeatPassword} type="password" autocomplete="new-password" required value={repeat}
          onInput={(e) => setRepeat(value(e))} />
        <button type="submit" disabled={change.busy}>{s.changePassword}</button>
      </form>
    </section>
  );
}

function DeleteAccount() {
  const strings = useStrings();
  const session = useSession();
  const s = strings.account;
  const [confirm, setConfirm] = useState("");
  const matches = confirm.trim().toLowerCase() === session.user!.email.toLowerCase();
  const remove = useAction(async () => {
    await api("delete", "/api/users/delete");
    await session.signOut();
  });
  return (
    <section class="card" aria-labelledby="account-delete">
      <h2 id="account-delete">{s.deleteTitle}</h2>
      <p>{s.deleteIntro}</p>
      <ErrorMessage error={remove.error} />
      <form onSubmit={(e) => { e.preventDefault(); if (matches) void remove.run(); }}>
        <Field label={s.deleteConfirmLabel} type="email" autocomplete="off" required value={confirm} onInput={(e) => setConfirm(value(e))} />
        <button type="submit" class="danger" disabled={!matches || remove.busy}>{s.deleteAccount}</button>
      </form>
    </section>
  );
}
