import type { Metadata } from "next";
import { redirect } from "next/navigation";

import { AuthForm } from "@/components/AuthForm";
import { getServerSession } from "@/lib/session";

export const metadata: Metadata = { title: "Sign in" };

export default async function SignInPage({
  searchParams,
}: {
  searchParams: Promise<Record<string, string | string[] | undefined>>;
}) {
  const { reason } = await searchParams;
  const expired = reason === "expired";
  // Already signed in: straight to the list. Not after the API refused the session, though,
  // or a session Better Auth accepts but the backend does not would bounce between the two pages.
  if (!expired && (await getServerSession())) redirect("/tasks");
  return (
    <main className="page page--narrow">
      <AuthForm mode="sign-in" notice={expired ? "Your session has ended. Please sign in again." : undefined} />
    </main>
  );
}
