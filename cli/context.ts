import { DataDistillerClient } from "./api-client.ts";
import { CliError } from "./errors.ts";

/** The options every command accepts (defined on the program). */
export interface GlobalOptions {
  endpoint?: string;
  token?: string;
  tenant: string;
}

/** `--endpoint` > DATADISTILLER_ENDPOINT > the local platform (`npm start`, API_PORT or 3000). */
export function resolveEndpoint(option: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const endpoint = option ?? env.DATADISTILLER_ENDPOINT ?? `http://127.0.0.1:${env.API_PORT ?? 3000}`;
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new CliError(`invalid endpoint ${JSON.stringify(endpoint)}: expected a URL such as http://127.0.0.1:3000`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new CliError(`invalid endpoint ${endpoint}: only http and https are supported`);
  }
  return endpoint;
}

export function isLoopback(endpoint: string): boolean {
  const host = new URL(endpoint).hostname;
  return host === "localhost" || host === "[::1]" || /^127(\.\d{1,3}){3}$/.test(host);
}

/**
 * `--token` > DATADISTILLER_TOKEN > for a local endpoint only, a token minted by the local issuer
 * for `--tenant`, asked of the local platform (`npm start` serves its stand-in identity provider
 * at /local/token), so the CLI never touches the signing key.
 */
export async function resolveToken(
  option: string | undefined,
  endpoint: string,
  tenant: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  const token = option ?? env.DATADISTILLER_TOKEN;
  if (token) return token;
  if (!isLoopback(endpoint)) {
    throw new CliError(`no token for ${endpoint}: pass --token or set DATADISTILLER_TOKEN`);
  }
  const url = new URL("/local/token", endpoint);
  url.searchParams.set("tenant", tenant);
  let local: { token?: unknown; tenant?: unknown };
  try {
    const response = await fetch(url, { cache: "no-store" });
    if (response.status === 400) {
      // The platform refused the tenant itself (an id the API would not accept either): say why.
      const { message } = (await response.json().catch(() => ({}))) as { message?: unknown };
      throw new CliError(`no token for the tenant ${tenant}: ${typeof message === "string" ? message : "HTTP 400"}`);
    }
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    local = (await response.json()) as { token?: unknown; tenant?: unknown };
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError(
      `no token for ${endpoint}: the local platform did not hand one out (${(error as Error).message}); ` +
        "is `npm start` running? Otherwise pass --token or set DATADISTILLER_TOKEN",
    );
  }
  if (typeof local.token !== "string" || local.tenant !== tenant) {
    throw new CliError(`no token for ${endpoint}: the local platform has no token for the tenant ${tenant}`);
  }
  return local.token;
}

/** The API client for the target the options select. */
export async function connect(options: GlobalOptions): Promise<DataDistillerClient> {
  const endpoint = resolveEndpoint(options.endpoint);
  return new DataDistillerClient(endpoint, await resolveToken(options.token, endpoint, options.tenant));
}
