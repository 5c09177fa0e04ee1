import { redirect } from "next/navigation";

// /tasks decides: the list when signed in, else /sign-in.
export default function Home(): never {
  redirect("/tasks");
}
