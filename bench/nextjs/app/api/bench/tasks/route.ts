// Benchmark only: the app's own Better Auth (lib/auth.ts, jwt plugin included: its hook on
// /get-session mints a JWT for every getSession call, server-side ones too).
import { auth } from "@/lib/auth";
import { listMyTasks } from "@/lib/bench-tasks";

export const GET = listMyTasks((options) => auth.api.getSession(options));
