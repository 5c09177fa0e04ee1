// Better Auth, on the server: sign-up, sign-in, sessions, and short-lived JWTs for the backend.
//
// Settings (environment, read when the server starts; see lib/env.ts and README.md):
//   DATABASE_URL          PostgreSQL, shared with the backend (Better Auth owns user/session/account/verification/jwks)
//   BETTER_AUTH_SECRET    signs cookies and encrypts the JWT signing keys: keep it the same for a database
//   BETTER_AUTH_URL       this app's public URL; default JWT issuer and audience
//   TRUSTED_ORIGINS       more origins allowed to POST with the cookie, comma-separated
//   BETTER_AUTH_ISSUER, BETTER_AUTH_AUDIENCE, JWT_EXPIRATION (default 15m), AUTH_RATE_LIMIT (on/off)
import { betterAuth } from "better-auth";
import { nextCookies } from "better-auth/next-js";
import { jwt } from "better-auth/plugins";
import { Pool } from "pg";

import {
  betterAuthUrl,
  databaseUrl,
  jwtAudience,
  jwtExpiration,
  jwtIssuer,
  rateLimitEnabled,
  readEnv,
  trustedOrigins,
} from "./env";

export const MIN_PASSWORD_LENGTH = 8;
export const MAX_PASSWORD_LENGTH = 128;

// One pool per process, kept across hot reloads in development.
const globalForPool = globalThis as typeof globalThis & { __betterAuthPool?: Pool };
const pool =
  globalForPool.__betterAuthPool ??
  new Pool({
    connectionString: databaseUrl(),
    max: 10,
    idleTimeoutMillis: 30_000,
    // `channel_binding=require` in the URL (Neon's) is not read by pg: ask for SCRAM-SHA-256-PLUS
    // here. Used whenever the server offers it (only over TLS); plain SCRAM otherwise.
    enableChannelBinding: true,
  });
globalForPool.__betterAuthPool = pool;

const rateLimit = rateLimitEnabled();

// `next build` loads this module to collect page data but never serves a request with it; the
// real secret is only needed (and required: Better Auth refuses to start without it) at run time.
const building = process.env.NEXT_PHASE === "phase-production-build";
const secret = readEnv("BETTER_AUTH_SECRET") ?? (building ? "unused-at-build-time-0123456789abcdefghijklmnopqrstuvwxyz" : undefined);

export const auth = betterAuth({
  appName: "Tasks",
  database: pool,
  secret,
  baseURL: betterAuthUrl(),
  basePath: "/api/auth",
  trustedOrigins: trustedOrigins(),
  emailAndPassword: {
    enabled: true,
    minPasswordLength: MIN_PASSWORD_LENGTH,
    maxPasswordLength: MAX_PASSWORD_LENGTH,
    autoSignIn: true,
  },
  // Better Auth's default (on in production, off in development) unless AUTH_RATE_LIMIT says otherwise.
  ...(rateLimit === undefined ? {} : { rateLimit: { enabled: rateLimit } }),
  telemetry: { enabled: false },
  plugins: [
    jwt({
      jwt: {
        issuer: jwtIssuer(),
        audience: jwtAudience(),
        expirationTime: jwtExpiration(),
        // Better Auth's default payload is the whole user row; keep it and add the session id,
        // so the backend can refuse tokens of a session that has been signed out.
        definePayload: ({ user, session }) => ({ ...user, sid: session.id }),
      },
    }),
    nextCookies(), // must stay last
  ],
});

export type Session = typeof auth.$Infer.Session;
