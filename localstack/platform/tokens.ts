import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { exportJWK, generateKeyPair, importJWK, type JWK, type JWTPayload, jwtVerify, SignJWT } from "jose";
import { LOCAL_JWT_ISSUER } from "../../infra/config.ts";
import { NAME_PATTERN, NAME_RULE } from "../../shared/api/schemas.ts";
import type { LocalHandler } from "../emulator/http-api.ts";
import { stateDir } from "../servers/paths.ts";

/**
 * The local stand-in for the JWT issuer the deployed API trusts (Cognito, Auth0, …): one signing
 * key kept in the state folder, tokens minted for a tenant, verified as API Gateway's JWT
 * authorizer verifies them (signature, issuer, audience, expiry).
 */
export const LOCAL_ISSUER = LOCAL_JWT_ISSUER;
const ALGORITHM = "ES256";
const keyFile = () => join(stateDir, "jwt-signing-key.json");

async function signingKey(): Promise<JWK> {
  if (existsSync(keyFile())) return JSON.parse(readFileSync(keyFile(), "utf8")) as JWK;
  const { privateKey } = await generateKeyPair(ALGORITHM, { extractable: true });
  const jwk = await exportJWK(privateKey);
  mkdirSync(stateDir, { recursive: true });
  writeFileSync(keyFile(), JSON.stringify(jwk), { mode: 0o600 });
  return jwk;
}

export async function mintToken(options: {
  tenant: string;
  audience: string;
  tenantClaim?: string;
  subject?: string;
  expiresIn?: string;
}): Promise<string> {
  const key = await importJWK(await signingKey(), ALGORITHM);
  return new SignJWT({ [options.tenantClaim ?? "tenant"]: options.tenant })
    .setProtectedHeader({ alg: ALGORITHM })
    .setIssuer(LOCAL_ISSUER)
    .setAudience(options.audience)
    .setSubject(options.subject ?? `local-user@${options.tenant}`)
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? "12h")
    .sign(key);
}

// Imported once: the key file does not change while the platform runs, and importing a key per
// request cost more CPU than verifying the token.
let verificationKey: ReturnType<typeof importJWK> | undefined;
const publicKey = () => {
  verificationKey ??= signingKey().then(({ d: _private, ...publicJwk }) => importJWK(publicJwk, ALGORITHM));
  return verificationKey;
};

/** Verifies a bearer token; resolves to its claims, or undefined when API Gateway would answer 401. */
export async function verifyToken(token: string, audience: string[]): Promise<JWTPayload | undefined> {
  const key = await publicKey();
  try {
    const { payload } = await jwtVerify(token, key, {
      issuer: LOCAL_ISSUER,
      audience,
    });
    return payload;
  } catch {
    return undefined;
  }
}

/**
 * The issuer's public keys as a JWK set (JSON), what an issuer publishes at its jwks_uri: the local
 * platform hands it to the functions (JWT_JWKS), which verify tokens themselves.
 */
export async function localJwks(): Promise<string> {
  const { d: _private, ...publicJwk } = await signingKey();
  return JSON.stringify({ keys: [{ ...publicJwk, alg: ALGORITHM, use: "sig" }] });
}

/** Where the local platform hands out tokens (the stand-in for an identity provider's token endpoint). */
export const LOCAL_TOKEN_PATH = "/local/token";

/**
 * `GET /local/token?tenant=NAME` → `{token, tenant}`: a token for the tenant, minted by the local
 * issuer. The CLI asks here for a local endpoint, so it never needs the signing key itself.
 * Served on the local API's loopback port only, never by a deployed stage.
 */
export function localTokenHandler(options: { audience?: string; tenantClaim?: string } = {}): LocalHandler {
  return async (request, response) => {
    const url = new URL(request.url ?? "/", "http://localhost");
    if (url.pathname !== LOCAL_TOKEN_PATH) return false;
    const tenant = url.searchParams.get("tenant") ?? "";
    const reply = (status: number, body: unknown) => {
      response.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
      response.end(JSON.stringify(body));
    };
    if (request.method !== "GET") reply(405, { message: "Method Not Allowed" });
    // Only tenants the API accepts: a token for any other tenant id would be refused by every route (403).
    else if (!NAME_PATTERN.test(tenant)) reply(400, { message: `a tenant id is ${NAME_RULE}` });
    else {
      const token = await mintToken({
        tenant,
        audience: options.audience ?? "datadistiller",
        tenantClaim: options.tenantClaim ?? "tenant",
      });
      reply(200, { token, tenant });
    }
    return true;
  };
}
