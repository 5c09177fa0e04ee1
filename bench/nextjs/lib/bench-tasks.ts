// Benchmark only (bench/http.py copies bench/nextjs/ into a throwaway copy of frontend/; the
// product never contains it): "list my tasks" the way a Next.js app serves it, a route handler
// that asks Better Auth for the session and queries PostgreSQL through `pg`.
import { Pool } from "pg";

import { databaseUrl } from "./env";

type GetSession = (options: { headers: Headers }) => Promise<{ user: { id: string } } | null>;

// One pool per process for the app's own queries (Better Auth keeps its own, as lib/auth.ts does).
const pool = new Pool({ connectionString: databaseUrl(), max: 10, idleTimeoutMillis: 30_000 });

// The backend's query for GET /api/me/tasks with its defaults (newest first, 50 at most).
const LIST_TASKS = `
  select id, user_id, title, description, completed, created_at, updated_at
  from task where user_id = $1 order by created_at desc, id desc limit 50`;

export function listMyTasks(getSession: GetSession) {
  return async function GET(request: Request): Promise<Response> {
    const session = await getSession({ headers: request.headers });
    if (!session) {
      return Response.json({ detail: "Not authenticated" }, { status: 401 });
    }
    const { rows } = await pool.query(LIST_TASKS, [session.user.id]);
    return Response.json(rows);
  };
}
