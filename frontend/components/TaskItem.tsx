"use client";

import { type KeyboardEvent, useEffect, useId, useRef, useState } from "react";

import type { Task } from "@/lib/api";

interface Props {
  task: Task;
  onToggle: (task: Task) => void;
  /** Resolves true when saved (the editor then closes). */
  onRename: (task: Task, title: string) => Promise<boolean>;
  onDelete: (task: Task) => void;
}

export function TaskItem({ task, onToggle, onRename, onDelete }: Props) {
  const id = useId();
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState(task.title);
  const [saving, setSaving] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  const editButton = useRef<HTMLButtonElement>(null);
  const returnFocus = useRef(false);

  useEffect(() => {
    if (editing) {
      input.current?.focus();
      input.current?.select();
    } else if (returnFocus.current) {
      returnFocus.current = false;
      editButton.current?.focus();
    }
  }, [editing]);

  function startEditing() {
    setDraft(task.title);
    setEditing(true);
  }

  function stopEditing() {
    returnFocus.current = true;
    setEditing(false);
  }

  async function save() {
    if (saving) return;
    setSaving(true);
    const saved = await onRename(task, draft);
    setSaving(false);
    if (saved) stopEditing();
    else input.current?.focus();
  }

  function onKeyDown(event: KeyboardEvent<HTMLInputElement>) {
    if (event.key === "Enter") {
      event.preventDefault();
      void save();
    } else if (event.key === "Escape") {
      event.preventDefault();
      stopEditing();
    }
  }

  const descriptionId = `${id}-description`;

  return (
    <li className={task.completed ? "task task--done" : "task"}>
      <div className="task__main">
        <label className="task__check">
          <input
            type="checkbox"
            checked={task.completed}
            onChange={() => onToggle(task)}
            aria-describedby={task.description ? descriptionId : undefined}
          />
          <span className="task__title">{task.title}</span>
        </label>
        {task.description ? (
          <p id={descriptionId} className="task__description">
            {task.description}
          </p>
        ) : null}
      </div>
      {editing ? (
        <div className="task__edit">
          <div className="field">
            <label htmlFor={`${id}-title`}>Edit title</label>
            <input
              ref={input}
              id={`${id}-title`}
              type="text"
              value={draft}
              maxLength={200}
              onChange={(e) => setDraft(e.target.value)}
              onKeyDown={onKeyDown}
              readOnly={saving}
            />
          </div>
          <div className="task__actions">
            <button type="button" className="button--primary button--small" onClick={() => void save()} disabled={saving}>
              Save
            </button>
            <button type="button" className="button--small" onClick={stopEditing} disabled={saving}>
              Cancel
            </button>
          </div>
        </div>
      ) : (
        <div className="task__actions">
          <button ref={editButton} type="button" className="button--small" onClick={startEditing}>
            Edit
          </button>
          <button type="button" className="button--small button--danger" onClick={() => onDelete(task)}>
            Delete
          </button>
        </div>
      )}
    </li>
  );
}
