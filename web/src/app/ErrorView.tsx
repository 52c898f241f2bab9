// Every error the app shows goes through here: an API `{detail}` as its text, a 422 as a list of
// what to fix, a network failure or a bug as a plain sentence. Never a blank page.
import { Component, type ComponentChildren } from "preact";
import { describeError } from "../api/client";
import { useStrings, type Catalogue } from "../i18n";

export function errorText(error: unknown, strings: Catalogue) {
  return describeError(error, strings.errors);
}

export function ErrorMessage(props: { error: unknown; onDismiss?: () => void; onRetry?: () => void }) {
  const strings = useStrings();
  if (props.error === null || props.error === undefined) return null;
  const { message, issues } = errorText(props.error, strings);
  return (
    <div class="error" role="alert">
      <p><strong>{message}</strong></p>
      {issues.length > 0 && <ul>{issues.map((issue) => <li>{issue}</li>)}</ul>}
      {(props.onRetry || props.onDismiss) && (
        <p class="actions">
          {props.onRetry && <button type="button" onClick={props.onRetry}>{strings.errors.retry}</button>}
          {props.onDismiss && <button type="button" class="secondary" onClick={props.onDismiss}>{strings.errors.dismiss}</button>}
        </p>
      )}
    </div>
  );
}

/** Catches what a page throws while rendering and shows it in place of the page. */
export class ErrorBoundary extends Component<{ children: ComponentChildren; resetKey?: string }, { error: unknown }> {
  state = { error: null as unknown };

  componentDidCatch(error: unknown) {
    this.setState({ error });
  }

  componentDidUpdate(previous: { resetKey?: string }) {
    if (previous.resetKey !== this.props.resetKey && this.state.error) this.setState({ error: null });
  }

  render() {
    if (this.state.error) return <ErrorMessage error={this.state.error} onRetry={() => this.setState({ error: null })} />;
    return this.props.children;
  }
}
