import type { Metadata } from "next";
import { redirect } from "next/navigation";

import { AuthForm } from "@/components/AuthForm";
import { getServerSession } from "@/lib/session";

export const metadata: Metadata = { title: "Sign up" };

export default async function SignUpPage() {
  if (await getServerSession()) redirect("/tasks");
  return (
    <main className="page page--narrow">
      <AuthForm mode="sign-up" />
    </main>
  );
}
