// Better Auth 1.7.25 as a test issuer: the real library, configured from the environment.
//
//   DATABASE_URL        postgresql://... (node-postgres URL; no "+driver" suffix)
//   BETTER_AUTH_SECRET  required; must stay the same for a database (it encrypts jwks keys)
//   BETTER_AUTH_URL     base URL, e.g. http://127.0.0.1:3999 (default: http://127.0.0.1:$PORT)
//   JWT_ALG             EdDSA (default) | ES256 | ES512 | RS256 | PS256
//   JWT_EXPIRATION      optional jwt.expirationTime, e.g. "15m" (Better Auth's default is 15m)
//   JWT_SID             "1": add `sid: session.id` to the payload, as the frontend does (default: off)
import { betterAuth } from "better-auth";
import { jwt } from "better-auth/plugins";
import pg from "pg";

export const SUPPORTED_ALGS = ["EdDSA", "ES256", "ES512", "RS256", "PS256"];

/** The jwt plugin's jwks.keyPairConfig for an algorithm name. */
export function keyPairConfigFor(alg) {
  switch (alg) {
    case "EdDSA":
      return { alg: "EdDSA", crv: "Ed25519" };
    case "ES256":
    case "ES512":
      // The curve follows from the alg (P-256 / P-521); Better Auth's types forbid `crv` here.
      return { alg };
    case "RS256":
    case "PS256":
      // jose's generateKeyPair defaults to 2048 and refuses anything smaller; be explicit.
      return { alg, modulusLength: 2048 };
    default:
      throw new Error(`JWT_ALG must be one of ${SUPPORTED_ALGS.join(", ")}; got ${alg}`);
  }
}

/** Reads and checks the harness settings from an environment object. */
export function readConfig(env = process.env) {
  const databaseUrl = env.DATABASE_URL;
  if (!databaseUrl) throw new Error("DATABASE_URL is required");
  const secret = env.BETTER_AUTH_SECRET;
  if (!secret) throw new Error("BETTER_AUTH_SECRET is required");
  const baseURL = env.BETTER_AUTH_URL || `http://127.0.0.1:${env.PORT || "3999"}`;
  const alg = env.JWT_ALG || "EdDSA";
  const expiration = env.JWT_EXPIRATION || undefined;
  const sid = env.JWT_SID === "1";
  return { databaseUrl, secret, baseURL, alg, expiration, sid };
}

/** Better Auth's logs go to stderr so stdout carries only what the scripts print on purpose. */
function stderrLogger() {
  return {
    level: "warn",
    log(level, message, ...args) {
      const extra = args.length ? ` ${args.map((a) => (a instanceof Error ? a.stack : JSON.stringify(a))).join(" ")}` : "";
      process.stderr.write(`${new Date().toISOString()} ${level.toUpperCase()} [Better Auth]: ${message}${extra}\n`);
    },
  };
}

/**
 * The betterAuth() options. `options.database` is a pg Pool owned by the caller: end() it when done.
 */
export function createAuthOptions(env = process.env) {
  const config = readConfig(env);
  const jwtOptions = { jwks: { keyPairConfig: keyPairConfigFor(config.alg) } };
  const jwtClaims = {};
  if (config.expiration) jwtClaims.expirationTime = config.expiration;
  // frontend/lib/auth.ts: Better Auth's default payload (the user row) plus the session id.
  if (config.sid) jwtClaims.definePayload = ({ user, session }) => ({ ...user, sid: session.id });
  if (Object.keys(jwtClaims).length) jwtOptions.jwt = jwtClaims;
  return {
    database: new pg.Pool({ connectionString: config.databaseUrl, max: 5 }),
    secret: config.secret,
    baseURL: config.baseURL,
    basePath: "/api/auth",
    trustedOrigins: [new URL(config.baseURL).origin],
    emailAndPassword: { enabled: true },
    rateLimit: { enabled: false },
    telemetry: { enabled: false },
    logger: stderrLogger(),
    plugins: [jwt(jwtOptions)],
  };
}

/** The Better Auth instance; its pg Pool is `auth.options.database`. */
export function createAuth(options = createAuthOptions()) {
  return betterAuth(options);
}
