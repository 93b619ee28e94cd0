/**
 * Where the console finds its API and token. `config.json` next to the page gives the endpoint
 * (a static build for a deployed stage) and, on the local stack only, a token minted by the
 * local issuer. Settings the user saves in the settings panel (localStorage) take precedence.
 */

export interface Settings {
  endpoint: string;
  token?: string;
  /** Where the token came from, for the header. */
  tokenSource: "saved" | "local stack" | "none";
}

const KEY = "datadistiller.console.settings";

interface Saved {
  endpoint?: string;
  token?: string;
}

function saved(): Saved {
  try {
    return JSON.parse(localStorage.getItem(KEY) ?? "{}") as Saved;
  } catch {
    return {};
  }
}

export async function loadSettings(): Promise<Settings> {
  let config: Saved = {};
  try {
    const response = await fetch("config.json", { cache: "no-store" });
    if (response.ok) config = (await response.json()) as Saved;
  } catch {
    // no config.json: the page's own origin, and a token from the settings panel
  }
  const mine = saved();
  const endpoint = (mine.endpoint || config.endpoint || location.origin).replace(/\/$/, "");
  if (mine.token) return { endpoint, token: mine.token, tokenSource: "saved" };
  if (config.token) return { endpoint, token: config.token, tokenSource: "local stack" };
  return { endpoint, tokenSource: "none" };
}

export function saveSettings(settings: Saved): void {
  const clean: Saved = {};
  if (settings.endpoint?.trim()) clean.endpoint = settings.endpoint.trim();
  if (settings.token?.trim()) clean.token = settings.token.trim().replace(/^Bearer\s+/i, "");
  localStorage.setItem(KEY, JSON.stringify(clean));
}

export function clearSettings(): void {
  localStorage.removeItem(KEY);
}

/** What the header shows of a token: its tenant and expiry (read, not verified: the API verifies). */
export function tokenInfo(token: string | undefined): { tenant?: string; expiresAt?: Date } {
  const payload = token?.split(".")[1];
  if (!payload) return {};
  try {
    const json = atob(
      payload
        .replace(/-/g, "+")
        .replace(/_/g, "/")
        .padEnd(Math.ceil(payload.length / 4) * 4, "="),
    );
    const claims = JSON.parse(json) as Record<string, unknown>;
    const tenant = claims.tenant ?? claims["custom:tenant"] ?? claims.sub;
    return {
      ...(typeof tenant === "string" ? { tenant } : {}),
      ...(typeof claims.exp === "number" ? { expiresAt: new Date(claims.exp * 1000) } : {}),
    };
  } catch {
    return {};
  }
}
