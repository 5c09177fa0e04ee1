import { headers } from "next/headers";

import { auth } from "./auth";

/** The signed-in user's session, checked on the server against the database (null: signed out). */
export async function getServerSession() {
  return auth.api.getSession({ headers: await headers() });
}
