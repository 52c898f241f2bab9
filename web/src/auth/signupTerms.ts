// The terms a person accepted on the sign-up form, accepted for them at their first sign-in (the
// API's signup takes no terms; POST /api/users/accept_tos needs a session).
import { api } from "../api/client";

const KEY = "wisp.signupTerms";

export function rememberSignupTerms(email: string, terms: Record<string, number>): void {
  try {
    localStorage.setItem(KEY, JSON.stringify({ email: email.trim().toLowerCase(), terms }));
  } catch {
    // they are asked again after signing in
  }
}

export async function acceptTermsFromSignup(email: string): Promise<void> {
  let stored: { email: string; terms: Record<string, number> } | null = null;
  try {
    stored = JSON.parse(localStorage.getItem(KEY) ?? "null");
  } catch {
    return;
  }
  if (!stored || stored.email !== email.trim().toLowerCase()) return;
  try {
    for (const [id, version] of Object.entries(stored.terms)) {
      await api("post", "/api/users/accept_tos", { query: { tos_id: Number(id), tos_version: version }, anonymous: true });
    }
    localStorage.removeItem(KEY);
  } catch {
    // an unverified account cannot accept yet, or the terms changed: the terms page asks again
  }
}
