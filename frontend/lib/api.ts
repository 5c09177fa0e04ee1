// The backend's API, typed from shared-schema/api.d.ts (generated from the backend's OpenAPI).
//
// Calls go straight from the browser to the backend (NEXT_PUBLIC_API_URL, handed to the page by the
// server at request time) with `Authorization: Bearer <jwt>` and nothing else: no cookies.
// The JWT comes from Better Auth (/api/auth/token, via the jwt client plugin), is kept in memory
// only, and is renewed when less than 30 s of it is left. A 401 renews it once and retries once;
// a second 401 sends the user to /sign-in. A 503 (the backend cannot reach Better Auth's keys or
// its database) is an outage, not a sign-out: the caller shows it and the user stays signed in.
import createClient from "openapi-fetch";

import type { components, paths } from "../../shared-schema/api";
import { authClient } from "./auth-client";

export type Task = components["schemas"]["TaskRead"];
export type User = components["schemas"]["User"];
export type TaskStatus = "all" | "pending" | "completed";

type ValidationIssue = components["schemas"]["ValidationError"];

export type ApiErrorKind =
  | "unauthorized" // no session any more: the user is being sent to /sign-in
  | "unavailable" // the backend (or Better Auth) answered 502/503/504: try again later
  | "network" // nothing answered at all
  | "invalid" // 422: the input was refused
  | "not_found" // 404: no such task (or someone else's)
  | "too_large" // 413
  | "failed"; // anything else

export class ApiError extends Error {
  constructor(
    readonly kind: ApiErrorKind,
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export const MESSAGES = {
  unauthorized: "Your session has ended. Please sign in again.",
  unavailable:
    "The task service is temporarily unavailable. You are still signed in: please try again in a moment.",
  authUnavailable:
    "Signing in is temporarily unavailable. You are still signed in: please try again in a moment.",
  network: "Cannot reach the task service. Check your connection, then try again.",
  notFound: "This task no longer exists.",
  tooLarge: "That is too long to save.",
} as const;

// ---------------------------------------------------------------------------------------------
// The JWT: in memory only, one renewal in flight at a time.

/** Renew when less than this is left before `exp`. */
export const RENEW_MARGIN_MS = 30_000;

interface HeldToken {
  token: string;
  /** Local clock time (ms) at which the token expires. */
  expiresAt: number;
}

let held: HeldToken | null = null;
let renewing: Promise<string> | null = null;

function decodePayload(token: string): { exp?: unknown; iat?: unknown } | null {
  const part = token.split(".")[1];
  if (!part) return null;
  try {
    const base64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const padded = base64 + "=".repeat((4 - (base64.length % 4)) % 4);
    const json = new TextDecoder().decode(Uint8Array.from(atob(padded), (c) => c.charCodeAt(0)));
    const payload: unknown = JSON.parse(json);
    return typeof payload === "object" && payload !== null ? payload : null;
  } catch {
    return null;
  }
}

/**
 * When the token expires, on this browser's clock. Measured from the moment it was received
 * (exp − iat), so a browser whose clock is off does not renew too late or on every call.
 */
function expiryOf(token: string, receivedAt: number): number {
  const payload = decodePayload(token);
  const exp = typeof payload?.exp === "number" ? payload.exp : null;
  const iat = typeof payload?.iat === "number" ? payload.iat : null;
  if (exp === null) return receivedAt; // unknown: use once, renew next time
  if (iat === null) return exp * 1000;
  return receivedAt + (exp - iat) * 1000;
}

async function fetchToken(): Promise<string> {
  let result: Awaited<ReturnType<typeof authClient.token>>;
  try {
    result = await authClient.token();
  } catch {
    throw new ApiError("network", MESSAGES.network);
  }
  const { data, error } = result;
  if (error) {
    if (error.status === 401) throw new ApiError("unauthorized", MESSAGES.unauthorized, 401);
    throw new ApiError("unavailable", MESSAGES.authUnavailable, error.status);
  }
  if (!data?.token) throw new ApiError("unavailable", MESSAGES.authUnavailable);
  held = { token: data.token, expiresAt: expiryOf(data.token, Date.now()) };
  return data.token;
}

/** A fresh JWT from Better Auth, whatever is held. Concurrent callers share one request. */
export function renewToken(): Promise<string> {
  renewing ??= fetchToken().finally(() => {
    renewing = null;
  });
  return renewing;
}

/** The held JWT while more than 30 s of it is left, else a renewed one. */
export function getToken(): Promise<string> {
  if (held && held.expiresAt - Date.now() > RENEW_MARGIN_MS) return Promise.resolve(held.token);
  return renewToken();
}

/** Drops the held JWT (on sign-out). */
export function forgetToken(): void {
  held = null;
}

// ---------------------------------------------------------------------------------------------
// The client.

export interface ApiOptions {
  /** The backend's public URL (NEXT_PUBLIC_API_URL), e.g. http://localhost:8000. */
  baseUrl: string;
  /** Called once when the session is gone: send the user to /sign-in. */
  onUnauthorized: () => void;
}

function withToken(request: Request, token: string): Request {
  request.headers.set("Authorization", `Bearer ${token}`);
  return request;
}

async function send(request: Request): Promise<Response> {
  try {
    return await fetch(request);
  } catch {
    throw new ApiError("network", MESSAGES.network);
  }
}

const FIELD_LABELS: Record<string, string> = { title: "Title", description: "Description" };

function validationMessage(body: unknown): string {
  const detail = (body as { detail?: unknown } | null)?.detail;
  if (Array.isArray(detail) && detail.length > 0) {
    const issue = detail[0] as ValidationIssue;
    const field = issue.loc[issue.loc.length - 1];
    const label = typeof field === "string" ? FIELD_LABELS[field] : undefined;
    return label ? `${label}: ${issue.msg}.` : `${issue.msg}.`;
  }
  return typeof detail === "string" ? detail : "That was not accepted.";
}

function errorFor(response: Response, body: unknown): ApiError {
  const { status } = response;
  switch (status) {
    case 401:
      return new ApiError("unauthorized", MESSAGES.unauthorized, status);
    case 404:
      return new ApiError("not_found", MESSAGES.notFound, status);
    case 413:
      return new ApiError("too_large", MESSAGES.tooLarge, status);
    case 422:
      return new ApiError("invalid", validationMessage(body), status);
    case 502:
    case 503:
    case 504:
      return new ApiError("unavailable", MESSAGES.unavailable, status);
    default:
      return new ApiError("failed", `The task service could not do that (HTTP ${status}). Please try again.`, status);
  }
}

interface Outcome<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

async function unwrap<T>(call: Promise<Outcome<T>>): Promise<{ data: T | undefined; response: Response }> {
  let outcome: Outcome<T>;
  try {
    outcome = await call;
  } catch (error) {
    if (error instanceof ApiError) throw error;
    throw new ApiError("network", MESSAGES.network);
  }
  if (!outcome.response.ok) throw errorFor(outcome.response, outcome.error);
  return { data: outcome.data, response: outcome.response };
}

function required<T>(data: T | undefined): T {
  if (data === undefined) throw new ApiError("failed", "The task service sent an empty answer. Please try again.");
  return data;
}

export function createApi({ baseUrl, onUnauthorized }: ApiOptions) {
  let signedOut = false;
  const unauthorized = (): ApiError => {
    forgetToken();
    if (!signedOut) {
      signedOut = true;
      onUnauthorized();
    }
    return new ApiError("unauthorized", MESSAGES.unauthorized, 401);
  };

  /** Sends with the JWT; on a 401, renews it once and retries once. */
  async function authorizedFetch(request: Request): Promise<Response> {
    const retry = request.clone(); // the body can be read only once
    let token: string;
    try {
      token = await getToken();
    } catch (error) {
      if (error instanceof ApiError && error.kind === "unauthorized") throw unauthorized();
      throw error;
    }
    const first = await send(withToken(request, token));
    if (first.status !== 401) return first;
    try {
      token = await renewToken();
    } catch (error) {
      if (error instanceof ApiError && error.kind === "unauthorized") throw unauthorized();
      throw error;
    }
    const second = await send(withToken(retry, token));
    if (second.status === 401) throw unauthorized();
    return second;
  }

  const client = createClient<paths>({ baseUrl, credentials: "omit", fetch: authorizedFetch });
  const me = { path: { user_id: "me" } } as const;

  return {
    /** The signed-in user, as the backend sees them. */
    async me(): Promise<User> {
      return required((await unwrap(client.GET("/api/me"))).data);
    },

    /** The user's tasks (newest first) and how many match in all. */
    async listTasks(status: TaskStatus, limit = 200): Promise<{ tasks: Task[]; total: number }> {
      const { data, response } = await unwrap(
        client.GET("/api/{user_id}/tasks", { params: { ...me, query: { status, limit } } }),
      );
      const tasks = required(data);
      const total = Number(response.headers.get("X-Total-Count") ?? tasks.length);
      return { tasks, total: Number.isFinite(total) ? total : tasks.length };
    },

    async createTask(title: string, description: string | null): Promise<Task> {
      const body = { title, description };
      return required((await unwrap(client.POST("/api/{user_id}/tasks", { params: me, body }))).data);
    },

    /** Replaces the title and description; `completed` stays as it is. */
    async updateTask(task: Task, title: string): Promise<Task> {
      const params = { path: { user_id: "me", task_id: task.id } };
      const body = { title, description: task.description };
      return required((await unwrap(client.PUT("/api/{user_id}/tasks/{task_id}", { params, body }))).data);
    },

    async setCompleted(task: Task, completed: boolean): Promise<Task> {
      const params = { path: { user_id: "me", task_id: task.id } };
      return required(
        (await unwrap(client.PATCH("/api/{user_id}/tasks/{task_id}/complete", { params, body: { completed } })))
          .data,
      );
    },

    async deleteTask(task: Task): Promise<void> {
      const params = { path: { user_id: "me", task_id: task.id } };
      await unwrap(client.DELETE("/api/{user_id}/tasks/{task_id}", { params }));
    },
  };
}

export type Api = ReturnType<typeof createApi>;
