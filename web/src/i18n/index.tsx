// The string catalogue in use: English, or German when the browser (or the user's choice, kept in
// localStorage) asks for it. Components read it with useStrings().
import { createContext } from "preact";
import { useContext } from "preact/hooks";
import { de } from "./de";
import { en, type Catalogue } from "./en";

export type { Catalogue };
export type Language = "en" | "de";
export const LANGUAGES: Record<Language, string> = { en: "English", de: "Deutsch" };

const STORAGE_KEY = "wisp.language";

/** `base` with every string `over` provides (nested sections merged one level deep and below). */
function merge<T>(base: T, over: unknown): T {
  if (!over || typeof over !== "object") return base;
  const result: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [key, value] of Object.entries(over as Record<string, unknown>)) {
    const current = result[key];
    result[key] = current && typeof current === "object" && typeof value === "object" ? merge(current, value) : value;
  }
  return result as T;
}

export function catalogue(language: Language): Catalogue {
  return language === "de" ? merge(en, de) : en;
}

export function initialLanguage(): Language {
  try {
    const stored = localStorage.getItem(STORAGE_KEY);
    if (stored === "en" || stored === "de") return stored;
  } catch {
    // storage may be off; the browser's language decides
  }
  return typeof navigator !== "undefined" && navigator.language?.toLowerCase().startsWith("de") ? "de" : "en";
}

export function storeLanguage(language: Language): void {
  try {
    localStorage.setItem(STORAGE_KEY, language);
  } catch {
    // not kept; fine
  }
}

export const StringsContext = createContext<Catalogue>(en);

export function useStrings(): Catalogue {
  return useContext(StringsContext);
}
