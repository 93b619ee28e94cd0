import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { exportJWK, generateKeyPair, importJWK, type JWK, type JWTPayload, jwtVerify, SignJWT } from "jose";
import { stateDir } from "../servers/paths.ts";

/**
 * The local stand-in for the JWT issuer the deployed API trusts (Cognito, Auth0, …): one signing
 * key kept in the state folder, tokens minted for a tenant, verified as API Gateway's JWT
 * authorizer verifies them (signature, issuer, audience, expiry).
 */
export const LOCAL_ISSUER = "https://datadistiller.local/issuer";
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
