// Small form pieces shared by the sign-in pages (and free for any page to use).
import type { ComponentChildren, JSX } from "preact";
import { useId } from "preact/hooks";

export function Field(props: { label: string; hint?: string } & JSX.InputHTMLAttributes<HTMLInputElement>) {
  const { label, hint, ...input } = props;
  const id = useId();
  return (
    <div class="field">
      <label for={id}>{label}</label>
      <input id={id} aria-describedby={hint ? `${id}-hint` : undefined} {...input} />
      {hint && <p id={`${id}-hint`} class="hint">{hint}</p>}
    </div>
  );
}

export function Status(props: { children: ComponentChildren }) {
  return <p class="success" role="status">{props.children}</p>;
}

export function value(event: Event): string {
  return (event.currentTarget as HTMLInputElement).value;
}
