// A share link's dashboard (/share/<id>): the site's dashboard, read-only, for whoever has the link; its
// password asked first when it has one. No account: the API answers the link (docs/auth.md).
import { useEffect, useState } from "preact/hooks";
import { api, ApiError } from "../api.js";
import { ErrorView, Loading } from "../components.jsx";
import { DATASETS } from "../datasets.js";
import { useTitle } from "../hooks.js";
import { setShare, shows } from "../scope.js";
import { Detail } from "./detail.jsx";
import { SiteDashboard } from "./site.jsx";

function SharePassword({ id, onOpen }) {
  const [password, setPassword] = useState("");
  const [state, setState] = useState({ busy: false, error: "" });
  const submit = async (event) => {
    event.preventDefault();
    if (!password) return setState({ busy: false, error: "Enter the password you were given with the link." });
    setState({ busy: true, error: "" });
    try {
      await api("POST", `/share/${encodeURIComponent(id)}/auth`, { body: { password }, auth: false });
    } catch (err) {
      const message =
        err instanceof ApiError && err.status === 401
          ? "That password is not this link's."
          : err instanceof ApiError && err.status === 429
            ? "Too many attempts. Wait a minute, then try again."
            : err.message || "The link could not be opened.";
      return setState({ busy: false, error: message });
    }
    setState({ busy: false, error: "" });
    onOpen();
    return undefined;
  };
  return (
    <section class="auth-card card" data-testid="share-password">
      <h1>A shared dashboard</h1>
      <p class="muted">This link is protected by a password. Its owner gave it to you with the link.</p>
      <form onSubmit={submit} noValidate>
        <label for="share-password">Password</label>
        <input
          id="share-password"
          type="password"
          autoComplete="current-password"
          value={password}
          onInput={(e) => setPassword(e.currentTarget.value)}
        />
        <p class="form-error" role="alert">
          {state.error}
        </p>
        <button type="submit" class="button primary" disabled={state.busy}>
          {state.busy ? "Opening…" : "Open the dashboard"}
        </button>
      </form>
    </section>
  );
}

/** What the visitor of a share link sees above the dashboard: whose it is, and what it leaves out. */
function ShareNote({ info }) {
  return (
    <p class="share-note muted small" role="note" data-testid="share-note">
      {info.name ? `“${info.name}”: a` : "A"} read-only dashboard of <strong>{info.hostname}</strong>, shared by its owner.
      {info.k > 1 && ` Rows of fewer than ${info.k} visitors are hidden, so no one visitor can be singled out.`}
      {info.dateExpires && ` The link works until ${new Date(info.dateExpires * 1000).toLocaleString()}.`}
    </p>
  );
}

export function SharePage({ id, name, query }) {
  const [state, setState] = useState({ status: "loading" });
  const load = () => {
    setState({ status: "loading" });
    api("GET", `/share/${encodeURIComponent(id)}`, { auth: false }).then(
      (info) => {
        setShare(info);
        setState({ status: "open", info });
      },
      (error) => setState({ status: error instanceof ApiError && error.status === 401 ? "locked" : "error", error }),
    );
  };
  useEffect(() => {
    load();
    return () => setShare(null);
  }, [id]);
  useTitle(state.info ? `${state.info.hostname} (shared)` : "Shared dashboard");
  if (state.status === "loading") return <Loading />;
  if (state.status === "locked") return <SharePassword id={id} onOpen={load} />;
  if (state.status === "error") {
    const expired = state.error.message === "this share link has expired";
    const title = expired ? "This link has expired" : state.error.status === 404 ? "No such shared dashboard" : undefined;
    return (
      <ErrorView error={state.error} title={title}>
        <p>Ask whoever gave you the link for a new one.</p>
      </ErrorView>
    );
  }
  const { info } = state;
  const detail = name && Object.hasOwn(DATASETS, name) && shows(name);
  return (
    <div class="share" data-testid="shared-dashboard">
      <ShareNote info={info} />
      {detail ? (
        <Detail key={name} hostname={info.hostname} name={name} query={query} />
      ) : (
        <SiteDashboard key={info.id} hostname={info.hostname} query={query} />
      )}
    </div>
  );
}
