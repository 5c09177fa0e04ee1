import type { Metadata } from "next";
import { redirect } from "next/navigation";

import { TasksView } from "@/components/TasksView";
import { publicApiUrl } from "@/lib/env";
import { getServerSession } from "@/lib/session";

export const metadata: Metadata = { title: "My tasks" };

export default async function TasksPage() {
  const session = await getServerSession();
  if (!session) redirect("/sign-in");
  // NEXT_PUBLIC_API_URL is read here, on the server, for every request, and handed to the
  // browser as a prop: the build does not freeze it.
  return <TasksView apiUrl={publicApiUrl()} user={{ name: session.user.name, email: session.user.email }} />;
}
