/** Goals: their conversions on the site's dashboard, and their setup under Settings → Websites (API /goals). */
import { useState } from "preact/hooks";
import { api } from "../api.js";
import { Empty, ErrorView, Loading } from "../components.jsx";
import { filterParams } from "../filters.js";
import { formatExact, formatPercent } from "../format.js";
import { useApi } from "../hooks.js";
import { Link } from "../router.jsx";

const encode = encodeURIComponent;

function describe(goal) {
  if (goal.page) return `Page ${goal.page}`;
  return goal.value ? `Event property ${goal.property} = ${goal.value}` : `Event property ${goal.property}`;
}

/** Each goal's conversions, converted visitors and rate over the page's period and filters. */
export function GoalsPanel({ hostname, stats, canManage }) {
  const params = { start: stats.base.start, end: stats.base.end, ...filterParams(stats.filters) };
  const { data, error, loading } = useApi(`/website/${encode(hostname)}/goals`, params, `${stats.key}|goals`);
  let body;
  if (error) body = <ErrorView error={error} />;
  else if (data === undefined) body = <Loading />;
  else if (!data.length) {
    body = (
      <Empty>
        No goals yet.{" "}
        {canManage ? <Link href={`/settings/websites?website=${encode(hostname)}#goals`}>Add one for {hostname}</Link> : "An admin can add them."}
      </Empty>
    );
  } else {
    body = (
      <ol class="rows">
        {data.map((row) => (
          <li key={row.id} class="row goal-row" data-goal={row.id}>
            <span class="row-bar" style={{ width: `${(Math.min(1, row.rate) * 100).toFixed(2)}%` }} aria-hidden="true" />
            <span class="row-button">
              <span class="row-label">{row.name}</span>
              <span class="row-value" title={`${formatExact(row.conversions)} conversions`}>
                {formatExact(row.visitors)}
              </span>
              <span class="row-share muted" title="Converted visitors over visitors">
                {formatPercent(row.rate)}
              </span>
            </span>
          </li>
        ))}
      </ol>
    );
  }
  return (
    <section class="card panel" aria-label="Goals" data-panel="goals">
      <h2 class="panel-title">Goals</h2>
      <p class="muted small">Converted visitors and the share of all visitors.</p>
      <div class="panel-body" aria-busy={loading ? "true" : "false"}>
        {body}
      </div>
    </section>
  );
}

/** Settings → Websites: the site's goals, deleted one by one, and a form to add one. */
export function GoalSettings({ hostname }) {
  const path = `/websites/${encode(hostname)}/goals`;
  const { data, error, reload } = useApi(path, null, `goals|${hostname}`);
  const [kind, setKind] = useState("page");
  const [form, setForm] = useState({ name: "", page: "", property: "", value: "" });
  const [state, setState] = useState({ busy: false, error: "", message: "" });
  const field = (key) => (e) => setForm({ ...form, [key]: e.currentTarget.value });
  const submit = async (e) => {
    e.preventDefault();
    const body = kind === "page" ? { page: form.page } : { property: form.property, ...(form.value.trim() ? { value: form.value } : {}) };
    if (form.name.trim()) body.name = form.name;
    setState({ busy: true, error: "", message: "" });
    try {
      const goal = await api("POST", path, { body });
      setForm({ name: "", page: "", property: "", value: "" });
      setState({ busy: false, error: "", message: `Added "${goal.name}".` });
      reload();
    } catch (err) {
      setState({ busy: false, error: err.message, message: "" });
    }
  };
  const remove = async (goal) => {
    try {
      await api("DELETE", `${path}/${encode(goal.id)}`);
      setState({ busy: false, error: "", message: `Deleted "${goal.name}".` });
      reload();
    } catch (err) {
      setState({ busy: false, error: err.message, message: "" });
    }
  };
  return (
    <form class="card settings-form" id="goals" onSubmit={submit} noValidate aria-labelledby="goals-title" data-testid="goal-settings">
      <h2 id="goals-title">Goals</h2>
      <p class="muted">
        A goal counts the visitors who reached a page (use <code>*</code> for any part of a path, as in <code>/signup/*/done</code>) or
        sent a custom event property (such as <code>plan</code>, or <code>plan</code> = <code>pro</code>).
      </p>
      {error ? (
        <ErrorView error={error} />
      ) : data === undefined ? (
        <Loading />
      ) : data.length ? (
        <ul class="goal-list">
          {data.map((goal) => (
            <li key={goal.id} data-goal={goal.id}>
              <strong>{goal.name}</strong> <span class="muted small">{describe(goal)}</span>{" "}
              <button type="button" class="button small-button" onClick={() => remove(goal)} aria-label={`Delete goal ${goal.name}`}>
                Delete
              </button>
            </li>
          ))}
        </ul>
      ) : (
        <p class="muted">No goals yet.</p>
      )}
      <fieldset class="goal-kind">
        <legend>Kind</legend>
        <label class="check">
          <input type="radio" name="goal-kind" checked={kind === "page"} onChange={() => setKind("page")} /> Page visited
        </label>
        <label class="check">
          <input type="radio" name="goal-kind" checked={kind === "event"} onChange={() => setKind("event")} /> Custom event
        </label>
      </fieldset>
      {kind === "page" ? (
        <>
          <label for="goal-page">Page path</label>
          <input id="goal-page" value={form.page} placeholder="/signup/*/done" spellcheck={false} onInput={field("page")} />
        </>
      ) : (
        <>
          <label for="goal-property">Property name</label>
          <input id="goal-property" value={form.property} placeholder="plan" spellcheck={false} onInput={field("property")} />
          <label for="goal-value">Value (optional)</label>
          <input id="goal-value" value={form.value} placeholder="any value" spellcheck={false} onInput={field("value")} />
        </>
      )}
      <label for="goal-name">Name (optional)</label>
      <input id="goal-name" value={form.name} placeholder="Signed up" onInput={field("name")} />
      {state.error && (
        <p class="form-error" role="alert">
          {state.error}
        </p>
      )}
      {state.message && (
        <p class="form-ok" role="status">
          {state.message}
        </p>
      )}
      <div class="form-actions">
        <button type="submit" class="button primary" disabled={state.busy}>
          Add goal
        </button>
      </div>
    </form>
  );
}
