"use client";

import { useRouter } from "next/navigation";
import { type FormEvent, useCallback, useEffect, useId, useMemo, useRef, useState } from "react";

import { PageHeading } from "@/components/PageHeading";
import { TaskItem } from "@/components/TaskItem";
import { ApiError, type Task, type TaskStatus, createApi, forgetToken } from "@/lib/api";
import { authClient } from "@/lib/auth-client";

const FILTERS: { value: TaskStatus; label: string }[] = [
  { value: "all", label: "All" },
  { value: "pending", label: "Pending" },
  { value: "completed", label: "Completed" },
];

const EMPTY: Record<TaskStatus, string> = {
  all: "No tasks yet. Add your first one above.",
  pending: "Nothing pending. Nice work!",
  completed: "No completed tasks yet.",
};

function matches(task: Task, filter: TaskStatus): boolean {
  return filter === "all" || task.completed === (filter === "completed");
}

interface Props {
  /** The backend's public URL, read from NEXT_PUBLIC_API_URL by the server at request time. */
  apiUrl: string;
  user: { name: string; email: string };
}

export function TasksView({ apiUrl, user }: Props) {
  const router = useRouter();
  const id = useId();
  const api = useMemo(() => createApi({ baseUrl: apiUrl, onUnauthorized: () => router.replace("/sign-in?reason=expired") }), [apiUrl, router]);

  const [filter, setFilter] = useState<TaskStatus>("all");
  const [tasks, setTasks] = useState<Task[]>([]);
  const [total, setTotal] = useState(0);
  const [loaded, setLoaded] = useState(false);
  const [loading, setLoading] = useState(true);
  // `reload`: the failure was the list itself, and trying again may help.
  const [error, setError] = useState<{ message: string; reload?: boolean } | null>(null);
  const [busy, setBusy] = useState<{ op: number; message: string } | null>(null);
  const [title, setTitle] = useState("");
  const [description, setDescription] = useState("");
  const [titleInvalid, setTitleInvalid] = useState(false);
  const titleInput = useRef<HTMLInputElement>(null);
  const nextOp = useRef(0);
  const listRequest = useRef(0);

  /** Shows `message` in the status region until the returned `done` is called. */
  const begin = useCallback((message: string) => {
    const op = ++nextOp.current;
    setBusy({ op, message });
    return () => setBusy((current) => (current?.op === op ? null : current));
  }, []);

  const report = useCallback((cause: unknown, reload = false) => {
    if (cause instanceof ApiError && cause.kind === "unauthorized") {
      setError({ message: cause.message }); // on its way to /sign-in
    } else if (cause instanceof ApiError) {
      setError({ message: cause.message, reload: reload && (cause.kind === "unavailable" || cause.kind === "network") });
    } else {
      setError({ message: "Something went wrong. Please try again." });
    }
  }, []);

  // The list: fetched on mount, and again when the filter changes or the user asks to retry.
  // State is only set once the answer is in, so the mount effect never renders twice in a row.
  const fetchList = useCallback(
    (status: TaskStatus) => {
      const request = ++listRequest.current;
      const current = () => request === listRequest.current; // else a newer request won
      return api.listTasks(status).then(
        (result) => {
          if (!current()) return;
          setTasks(result.tasks);
          setTotal(result.total);
          setLoaded(true);
          setError(null);
          setLoading(false);
        },
        (cause: unknown) => {
          if (!current()) return;
          report(cause, true);
          setLoading(false);
        },
      );
    },
    [api, report],
  );

  useEffect(() => {
    void fetchList("all");
  }, [fetchList]);

  function load(status: TaskStatus) {
    setLoading(true);
    setError(null);
    void fetchList(status);
  }

  function chooseFilter(status: TaskStatus) {
    if (status === filter) return;
    setFilter(status);
    load(status);
  }

  function replace(updated: Task) {
    if (matches(updated, filter)) {
      setTasks((list) => list.map((t) => (t.id === updated.id ? updated : t)));
    } else {
      setTasks((list) => list.filter((t) => t.id !== updated.id));
      setTotal((n) => Math.max(0, n - 1));
    }
  }

  async function add(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const trimmed = title.trim();
    if (!trimmed) {
      setTitleInvalid(true);
      setError({ message: "Enter a title for the task." });
      titleInput.current?.focus();
      return;
    }
    if (trimmed.length > 200) {
      setTitleInvalid(true);
      setError({ message: "Title is too long: use at most 200 characters." });
      titleInput.current?.focus();
      return;
    }
    setTitleInvalid(false);
    setError(null);
    const done = begin("Adding task…");
    try {
      const task = await api.createTask(trimmed, description.trim() || null);
      if (matches(task, filter)) {
        setTasks((list) => [task, ...list.filter((t) => t.id !== task.id)]);
        setTotal((n) => n + 1);
      }
      setTitle("");
      setDescription("");
      titleInput.current?.focus();
    } catch (cause) {
      report(cause);
    } finally {
      done();
    }
  }

  function toggle(task: Task) {
    const completed = !task.completed;
    setError(null);
    setTasks((list) => list.map((t) => (t.id === task.id ? { ...t, completed } : t)));
    const done = begin("Saving…");
    api
      .setCompleted(task, completed)
      .then(replace)
      .catch((cause: unknown) => {
        if (cause instanceof ApiError && cause.kind === "not_found") {
          setTasks((list) => list.filter((t) => t.id !== task.id));
        } else {
          setTasks((list) => list.map((t) => (t.id === task.id ? { ...t, completed: task.completed } : t)));
        }
        report(cause);
      })
      .finally(done);
  }

  async function rename(task: Task, draft: string): Promise<boolean> {
    const trimmed = draft.trim();
    if (!trimmed) {
      setError({ message: "The title cannot be empty." });
      return false;
    }
    if (trimmed === task.title) {
      setError(null);
      return true;
    }
    setError(null);
    const done = begin("Saving…");
    try {
      replace(await api.updateTask(task, trimmed));
      return true;
    } catch (cause) {
      if (cause instanceof ApiError && cause.kind === "not_found") {
        setTasks((list) => list.filter((t) => t.id !== task.id));
      }
      report(cause);
      return false;
    } finally {
      done();
    }
  }

  function remove(task: Task) {
    setError(null);
    const index = tasks.findIndex((t) => t.id === task.id);
    setTasks((list) => list.filter((t) => t.id !== task.id));
    setTotal((n) => Math.max(0, n - 1));
    const done = begin("Deleting…");
    api
      .deleteTask(task)
      .catch((cause: unknown) => {
        if (cause instanceof ApiError && cause.kind === "not_found") return; // gone already
        setTasks((list) => {
          if (list.some((t) => t.id === task.id)) return list;
          const restored = [...list];
          restored.splice(index < 0 ? 0 : Math.min(index, restored.length), 0, task);
          return restored;
        });
        setTotal((n) => n + 1);
        report(cause);
      })
      .finally(done);
  }

  async function signOut() {
    setError(null);
    const done = begin("Signing out…");
    try {
      const { error: failure } = await authClient.signOut();
      if (failure) throw new Error(failure.message);
      forgetToken();
      router.replace("/sign-in");
      router.refresh();
    } catch {
      done();
      setError({ message: "Could not sign out: the server did not answer. Please try again." });
    }
  }

  const countLabel = `${total} ${filter === "all" ? "" : `${filter} `}${total === 1 ? "task" : "tasks"}`;

  return (
    <main className="page">
      <header className="topbar">
        <div>
          <p className="brand">Tasks</p>
          <PageHeading>My tasks</PageHeading>
          <p className="topbar__who">
            Signed in as {user.name} ({user.email})
          </p>
        </div>
        <button type="button" onClick={() => void signOut()}>
          Sign out
        </button>
      </header>

      <section className="card" aria-labelledby={`${id}-add`}>
        <h2 id={`${id}-add`} className="visually-hidden">
          Add a task
        </h2>
        <form className="add-form" onSubmit={(e) => void add(e)} noValidate>
          <div className="field">
            <label htmlFor={`${id}-title`}>Title</label>
            <input
              ref={titleInput}
              id={`${id}-title`}
              name="title"
              type="text"
              required
              maxLength={200}
              autoComplete="off"
              value={title}
              onChange={(e) => {
                setTitle(e.target.value);
                if (titleInvalid) setTitleInvalid(false);
              }}
              aria-invalid={titleInvalid || undefined}
            />
          </div>
          <div className="field">
            <label htmlFor={`${id}-description`}>Description</label>
            <textarea
              id={`${id}-description`}
              name="description"
              rows={2}
              maxLength={1000}
              value={description}
              onChange={(e) => setDescription(e.target.value)}
            />
          </div>
          <div className="add-form__actions">
            <button type="submit" className="button--primary">
              Add task
            </button>
          </div>
        </form>
      </section>

      <div className="toolbar">
        <div role="group" aria-label="Filter" className="filter">
          {FILTERS.map(({ value, label }) => (
            <button key={value} type="button" aria-pressed={filter === value} onClick={() => chooseFilter(value)}>
              {label}
            </button>
          ))}
        </div>
        {loaded ? <p className="small muted">{countLabel}</p> : null}
      </div>

      <div className="stack">
        {error ? (
          <p role="alert" className="alert">
            {error.message}
            {error.reload || (!loaded && !loading) ? (
              <button type="button" className="button--small" onClick={() => load(filter)}>
                Try again
              </button>
            ) : null}
          </p>
        ) : null}
        {loading || busy ? (
          <p role="status" className="status">
            {loading ? "Loading tasks…" : busy?.message}
          </p>
        ) : null}
        {loaded && tasks.length === 0 ? <p className="empty">{EMPTY[filter]}</p> : null}
        {tasks.length > 0 ? (
          <ul className="task-list" aria-label="Tasks">
            {tasks.map((task) => (
              <TaskItem key={task.id} task={task} onToggle={toggle} onRename={rename} onDelete={remove} />
            ))}
          </ul>
        ) : null}
        {loaded && total > tasks.length ? (
          <p className="small muted">
            Showing the newest {tasks.length} of {total}.
          </p>
        ) : null}
      </div>
    </main>
  );
}
