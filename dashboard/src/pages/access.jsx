// Who gets in, in Settings: accounts and their roles (admins), API keys, two-factor login, a site's share links.
import { useEffect, useMemo, useState } from "preact/hooks";
import { api, ApiError } from "../api.js";
import { Empty, ErrorView, Loading, Snippet } from "../components.jsx";
import { DATASETS } from "../datasets.js";
import { useApi } from "../hooks.js";
import { passwordProblem } from "../password.js";
import { qrMatrix, qrPath } from "../qr.js";
import { setUser } from "../session.js";
import { Status, useSave } from "./settings.jsx";

// The lists a share link may be limited to (api/shares.py PANELS), in the dashboard's order.
const SHARE_PANELS = ["pages", "time", "entries", "exits", "referrers", "sources", "mediums", "campaigns", "browsers", "os", "devices", "countries", "languages", "properties"];
const DEFAULT_K = 5; // the API's default floor

const day = (seconds) => (seconds ? new Date(seconds * 1000).toLocaleDateString() : "—");
const endOfDay = (isoDay) => Math.floor(new Date(`${isoDay}T23:59:59`).getTime() / 1000); // a date input's day, local

/** Checkboxes for a list of names; `chosen` is a Set. */
function Checklist({ legend, names, chosen, onChange, labelOf = (n) => n, idPrefix }) {
  const toggle = (name) => {
    const next = new Set(chosen);
    if (next.has(name)) next.delete(name);
    else next.add(name);
    onChange(next);
  };
  return (
    <fieldset class="checklist">
      <legend>{legend}</legend>
      {names.length === 0 && <p class="muted small">None yet.</p>}
      {names.map((name) => (
        <label key={name} class="check">
          <input type="checkbox" id={`${idPrefix}-${name}`} checked={chosen.has(name)} onChange={() => toggle(name)} /> {labelOf(name)}
        </label>
      ))}
    </fieldset>
  );
}

// --- Users (admins) ---

function InviteUser({ sites, onDone }) {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [role, setRole] = useState("viewer");
  const [granted, setGranted] = useState(new Set());
  const [state, run] = useSave();
  const submit = async (event) => {
    event.preventDefault();
    const name = username.trim();
    if (name.length < 3 || name.length > 48) return run(() => Promise.reject(new Error("The username has 3 to 48 characters.")));
    const problem = passwordProblem(password, password);
    if (problem) return run(() => Promise.reject(new Error(problem)));
    const body = { username: name, password, role, websites: role === "viewer" ? [...granted] : [] };
    const ok = await run(() => api("POST", "/users", { body }), `Added ${name}. Give them the password; they can change it under Settings → Account.`);
    if (ok !== undefined) {
      setUsername("");
      setPassword("");
      setGranted(new Set());
      onDone();
    }
    return undefined;
  };
  return (
    <form class="card settings-form" onSubmit={submit} noValidate aria-labelledby="invite-title" data-testid="invite-user">
      <h2 id="invite-title">Invite someone</h2>
      <label for="invite-username">Username</label>
      <input id="invite-username" autoComplete="off" value={username} onInput={(e) => setUsername(e.currentTarget.value)} />
      <label for="invite-password">First password</label>
      <input id="invite-password" type="text" autoComplete="off" spellcheck={false} value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
      <p class="muted small">5 to 128 characters. Pass it on yourself; they can change it once signed in.</p>
      <label for="invite-role">Role</label>
      <select id="invite-role" value={role} onChange={(e) => setRole(e.currentTarget.value)}>
        <option value="viewer">Viewer: reads the websites ticked below</option>
        <option value="admin">Admin: everything</option>
      </select>
      {role === "viewer" && <Checklist legend="Websites they may read" names={sites} chosen={granted} onChange={setGranted} idPrefix="invite-site" />}
      <Status state={state} />
      <div class="form-actions">
        <button type="submit" class="button primary" disabled={state.busy}>
          Add account
        </button>
      </div>
    </form>
  );
}

function EditUser({ user, sites, onDone }) {
  const [role, setRole] = useState(user.role);
  const [granted, setGranted] = useState(new Set(user.websites));
  const [password, setPassword] = useState("");
  const [confirm, setConfirm] = useState("");
  const [state, run] = useSave();
  const path = `/users/${encodeURIComponent(user.username)}`;
  const save = async (event) => {
    event.preventDefault();
    const body = { role, websites: [...granted] };
    if (password) {
      const problem = passwordProblem(password, password);
      if (problem) return run(() => Promise.reject(new Error(problem)));
      body.password = password;
    }
    const ok = await run(() => api("PATCH", path, { body }), `Saved ${user.username}.`);
    if (ok !== undefined) {
      setPassword("");
      onDone();
    }
    return undefined;
  };
  const remove = async () => {
    if (confirm !== user.username) return;
    const ok = await run(() => api("DELETE", path), `Removed ${user.username}.`);
    if (ok !== undefined) onDone();
  };
  return (
    <form class="card settings-form" onSubmit={save} noValidate aria-label={`Edit ${user.username}`} data-testid="edit-user">
      <h2>{user.username}</h2>
      <label for="edit-role">Role</label>
      <select id="edit-role" value={role} onChange={(e) => setRole(e.currentTarget.value)}>
        <option value="viewer">Viewer</option>
        <option value="admin">Admin</option>
      </select>
      {role === "viewer" && <Checklist legend="Websites they may read" names={sites} chosen={granted} onChange={setGranted} idPrefix="edit-site" />}
      <label for="edit-password">New password</label>
      <input id="edit-password" type="text" autoComplete="off" placeholder="Leave empty to keep theirs" value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
      <p class="muted small">A new password signs them out everywhere.</p>
      <Status state={state} />
      <div class="form-actions">
        <button type="submit" class="button primary" disabled={state.busy}>
          Save
        </button>
      </div>
      <div class="danger-zone">
        <label for="remove-confirm">Type {user.username} to remove this account; the websites it added become yours.</label>
        <input id="remove-confirm" autoComplete="off" value={confirm} onInput={(e) => setConfirm(e.currentTarget.value)} />
        <button type="button" class="button danger-button" disabled={confirm !== user.username || state.busy} onClick={remove}>
          Remove {user.username}
        </button>
      </div>
    </form>
  );
}

export function Users({ me }) {
  const [version, setVersion] = useState(0);
  const [editing, setEditing] = useState("");
  const users = useApi("/users", null, String(version));
  const websites = useApi("/websites", null, "sites");
  const sites = (websites.data || []).map((w) => w.hostname);
  if (users.error) return <ErrorView error={users.error} />;
  if (!users.data) return <Loading />;
  const reload = () => {
    setEditing("");
    setVersion((v) => v + 1);
  };
  const chosen = users.data.find((u) => u.username === editing);
  return (
    <div class="stack">
      <section class="card" aria-labelledby="users-title">
        <h2 id="users-title">Users</h2>
        <p class="muted">Admins may do everything. Viewers read the stats of the websites ticked for them, and change only their own account.</p>
        <div class="table-wrap">
          <table class="table" data-testid="users-table">
            <thead>
              <tr>
                <th scope="col">Username</th>
                <th scope="col">Role</th>
                <th scope="col">Websites</th>
                <th scope="col">Two-factor</th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {users.data.map((u) => (
                <tr key={u.username} data-username={u.username}>
                  <td>{u.username}</td>
                  <td>{u.role}</td>
                  <td>{u.role === "admin" ? "all" : u.websites.join(", ") || "none"}</td>
                  <td>{u.totpEnabled ? "on" : "off"}</td>
                  <td>
                    {u.username === me ? (
                      <span class="muted small">you</span>
                    ) : (
                      <button type="button" class="button small-button" aria-expanded={editing === u.username ? "true" : "false"} onClick={() => setEditing(editing === u.username ? "" : u.username)}>
                        Edit
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>
      {chosen && <EditUser key={chosen.username} user={chosen} sites={sites} onDone={reload} />}
      <InviteUser sites={sites} onDone={reload} />
    </div>
  );
}

// --- API keys ---

export function ApiKeys() {
  const [version, setVersion] = useState(0);
  const keys = useApi("/user/keys", null, String(version));
  const [name, setName] = useState("");
  const [scope, setScope] = useState("read");
  const [expires, setExpires] = useState("");
  const [made, setMade] = useState(null);
  const [state, run] = useSave();
  const submit = async (event) => {
    event.preventDefault();
    if (!name.trim()) return run(() => Promise.reject(new Error("Give the key a name, such as where it is used.")));
    const body = { name: name.trim(), scope };
    if (expires) body.dateExpires = endOfDay(expires);
    const created = await run(() => api("POST", "/user/keys", { body }), "Created. Copy the key now: it is not shown again.");
    if (created) {
      setMade(created);
      setName("");
      setExpires("");
      setVersion((v) => v + 1);
    }
    return undefined;
  };
  const revoke = async (key) => {
    await run(() => api("DELETE", `/user/keys/${encodeURIComponent(key.id)}`), `Revoked ${key.name}: it stops working at once.`);
    if (made && made.id === key.id) setMade(null);
    setVersion((v) => v + 1);
  };
  return (
    <div class="stack">
      <section class="card" aria-labelledby="keys-title">
        <h2 id="keys-title">API keys</h2>
        <p class="muted">
          Scripts and other tools send a key as <code>Authorization: Bearer &lt;key&gt;</code> instead of signing in. A key does no more
          than its scope and your account allow; keys never manage keys or two-factor login.
        </p>
        {keys.error ? (
          <ErrorView error={keys.error} />
        ) : !keys.data ? (
          <Loading />
        ) : !keys.data.length ? (
          <Empty>No keys yet.</Empty>
        ) : (
          <div class="table-wrap">
            <table class="table" data-testid="keys-table">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Scope</th>
                  <th scope="col">Created</th>
                  <th scope="col">Expires</th>
                  <th scope="col">Last used</th>
                  <th scope="col">
                    <span class="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {keys.data.map((key) => (
                  <tr key={key.id} data-key={key.name}>
                    <td>{key.name}</td>
                    <td>{key.scope}</td>
                    <td>{day(key.dateCreated)}</td>
                    <td>{key.dateExpires ? day(key.dateExpires) : "never"}</td>
                    <td>{key.lastUsed ? new Date(key.lastUsed * 1000).toLocaleString() : "never"}</td>
                    <td>
                      <button type="button" class="button small-button" onClick={() => revoke(key)}>
                        Revoke
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      {made && (
        <section class="card callout" aria-labelledby="new-key-title" data-testid="new-key">
          <h2 id="new-key-title">Your new key “{made.name}”</h2>
          <p>Copy it now: only its fingerprint is kept, so it cannot be shown again.</p>
          <Snippet text={made.key} label="API key" />
          <p class="muted small">For example:</p>
          <Snippet text={`curl -H "Authorization: Bearer ${made.key}" ${location.origin}/api/websites`} label="Example request" />
        </section>
      )}
      <form class="card settings-form" onSubmit={submit} noValidate aria-labelledby="new-key-form-title">
        <h2 id="new-key-form-title">Create a key</h2>
        <label for="key-name">Name</label>
        <input id="key-name" maxLength={64} placeholder="e.g. Grafana" value={name} onInput={(e) => setName(e.currentTarget.value)} />
        <label for="key-scope">Scope</label>
        <select id="key-scope" value={scope} onChange={(e) => setScope(e.currentTarget.value)}>
          <option value="read">read: stats and websites lists</option>
          <option value="admin">admin: everything your account may do</option>
        </select>
        <label for="key-expires">Expires</label>
        <input id="key-expires" type="date" value={expires} onInput={(e) => setExpires(e.currentTarget.value)} />
        <p class="muted small">Leave empty for a key that never expires.</p>
        <Status state={state} />
        <div class="form-actions">
          <button type="submit" class="button primary" disabled={state.busy}>
            Create key
          </button>
        </div>
      </form>
    </div>
  );
}

// --- Two-factor login ---

/** The otpauth URI as a QR code, drawn here: the secret never reaches another server. */
function QrCode({ text }) {
  const matrix = useMemo(() => qrMatrix(text), [text]);
  const size = matrix.length + 8;
  return (
    <svg class="qr" viewBox={`0 0 ${size} ${size}`} role="img" aria-label="QR code for your authenticator app" data-testid="totp-qr" shape-rendering="crispEdges">
      <rect width={size} height={size} fill="#fff" />
      <path d={qrPath(matrix)} fill="#000" />
    </svg>
  );
}

export function TwoFactor({ user, onChange }) {
  const [setup, setSetup] = useState(null); // { secret, uri } between POST /user/totp and its confirmation
  const [codes, setCodes] = useState(null); // the recovery codes, shown once
  const [code, setCode] = useState("");
  const [state, run] = useSave();
  const refresh = () => api("GET", "/user").then((fresh) => {
    setUser(fresh);
    onChange(fresh);
  });
  const start = async () => {
    const made = await run(() => api("POST", "/user/totp"), "");
    if (made) setSetup(made);
  };
  const confirm = async (event) => {
    event.preventDefault();
    const done = await run(() => api("POST", "/user/totp/confirm", { body: { code: code.trim() } }).catch(codeError), "Two-factor login is on.");
    if (done) {
      setCodes(done.recoveryCodes);
      setSetup(null);
      setCode("");
      refresh();
    }
  };
  const stop = async (event) => {
    event.preventDefault();
    const done = await run(() => api("DELETE", "/user/totp", { body: { code: code.trim() } }).catch(codeError), "Two-factor login is off.");
    if (done !== undefined) {
      setCode("");
      refresh();
    }
  };
  return (
    <section class="card settings-form" aria-labelledby="totp-title" data-testid="two-factor">
      <h2 id="totp-title">Two-factor login</h2>
      {codes && (
        <div class="callout" data-testid="recovery-codes">
          <p>
            <strong>Save these recovery codes</strong> somewhere safe. Each signs you in once if you lose the app. They are not shown again.
          </p>
          <Snippet text={codes.join("\n")} label="Recovery codes" />
          <button type="button" class="button" onClick={() => setCodes(null)}>
            I saved them
          </button>
        </div>
      )}
      {user.totpEnabled ? (
        <form onSubmit={stop} noValidate>
          <p>On: signing in asks for a code from your authenticator app.</p>
          <label for="totp-off-code">Code or recovery code, to turn it off</label>
          <input id="totp-off-code" inputMode="numeric" autoComplete="one-time-code" value={code} onInput={(e) => setCode(e.currentTarget.value)} />
          <Status state={state} />
          <div class="form-actions">
            <button type="submit" class="button" disabled={state.busy || !code.trim()}>
              Turn off
            </button>
          </div>
        </form>
      ) : setup ? (
        <form onSubmit={confirm} noValidate>
          <p>Scan this with an authenticator app (or type the key), then enter the 6-digit code it shows.</p>
          <QrCode text={setup.uri} />
          <p class="muted small">
            Key: <code class="totp-secret">{setup.secret.replace(/(.{4})/g, "$1 ").trim()}</code>
          </p>
          <label for="totp-code">Code from the app</label>
          <input id="totp-code" inputMode="numeric" autoComplete="one-time-code" maxLength={8} value={code} onInput={(e) => setCode(e.currentTarget.value)} />
          <Status state={state} />
          <div class="form-actions">
            <button type="submit" class="button primary" disabled={state.busy || !code.trim()}>
              Turn on
            </button>
          </div>
        </form>
      ) : (
        <div>
          <p>Off. With it on, signing in needs your password and a code from an app on your phone.</p>
          <Status state={state} />
          <button type="button" class="button primary" onClick={start} disabled={state.busy}>
            Set up two-factor login
          </button>
        </div>
      )}
    </section>
  );
}

function codeError(err) {
  if (err instanceof ApiError && err.status === 403) return Promise.reject(new Error("That code is not right. Codes change every 30 seconds."));
  if (err instanceof ApiError && err.status === 429) return Promise.reject(new Error("Too many wrong codes. Wait a minute, then try again."));
  return Promise.reject(err);
}

// --- Share links of one website ---

function shareUrl(share) {
  return `${location.origin}${share.path}`;
}

function NewShare({ hostname, onDone }) {
  const [name, setName] = useState("");
  const [k, setK] = useState(String(DEFAULT_K));
  const [password, setPassword] = useState("");
  const [expires, setExpires] = useState("");
  const [panels, setPanels] = useState(new Set(SHARE_PANELS));
  const [ancestors, setAncestors] = useState("");
  const [state, run] = useSave();
  const submit = async (event) => {
    event.preventDefault();
    const floor = Number(k);
    if (!Number.isInteger(floor) || floor < 0 || floor > 1000) return run(() => Promise.reject(new Error("k: a whole number from 0 to 1000.")));
    if (password && password.length < 5) return run(() => Promise.reject(new Error("The password has at least 5 characters.")));
    if (!panels.size) return run(() => Promise.reject(new Error("Tick at least one list to show.")));
    const body = { name: name.trim(), k: floor, frameAncestors: ancestors.split(/\s+/).filter(Boolean) };
    if (password) body.password = password;
    if (expires) body.dateExpires = endOfDay(expires);
    if (panels.size < SHARE_PANELS.length) body.panels = SHARE_PANELS.filter((p) => panels.has(p));
    const made = await run(() => api("POST", `/websites/${encodeURIComponent(hostname)}/shares`, { body }), "Created: the link is in the list above.");
    if (made) {
      setName("");
      setPassword("");
      onDone();
    }
    return undefined;
  };
  return (
    <form class="card settings-form" onSubmit={submit} noValidate aria-labelledby="new-share-title" data-testid="new-share">
      <h2 id="new-share-title">Share the dashboard</h2>
      <p class="muted">A link that shows {hostname}'s dashboard, read-only, to anyone who has it: no account needed.</p>
      <label for="share-name">Name</label>
      <input id="share-name" maxLength={64} placeholder="e.g. for the newsletter team" value={name} onInput={(e) => setName(e.currentTarget.value)} />
      <label for="share-k">Hide rows of fewer visitors than (k)</label>
      <input id="share-k" type="number" min="0" max="1000" inputMode="numeric" value={k} onInput={(e) => setK(e.currentTarget.value)} />
      <p class="muted small">
        The k-anonymity floor: lists and tables leave out rows that fewer than k visitors stand behind, and filters may name only the
        values shown, so no single visitor can be picked out. Totals stay exact. 0 or 1: show every row.
      </p>
      <label for="share-password-new">Password</label>
      <input id="share-password-new" type="text" autoComplete="off" placeholder="Optional" value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
      <label for="share-expires">Works until</label>
      <input id="share-expires" type="date" value={expires} onInput={(e) => setExpires(e.currentTarget.value)} />
      <Checklist legend="Lists shown (the totals and chart always are)" names={SHARE_PANELS} chosen={panels} onChange={setPanels} labelOf={(p) => DATASETS[p].title} idPrefix="share-panel" />
      <label for="share-frames">Sites that may embed it in a frame</label>
      <textarea id="share-frames" rows={2} spellcheck={false} placeholder="https://blog.example.com (one per line; empty: none)" value={ancestors} onInput={(e) => setAncestors(e.currentTarget.value)} />
      <Status state={state} />
      <div class="form-actions">
        <button type="submit" class="button primary" disabled={state.busy}>
          Create link
        </button>
      </div>
    </form>
  );
}

export function ShareLinks({ hostname }) {
  const [version, setVersion] = useState(0);
  const shares = useApi(`/websites/${encodeURIComponent(hostname)}/shares`, null, `${hostname}|${version}`);
  const [state, run] = useSave();
  useEffect(() => setVersion(0), [hostname]);
  const remove = async (share) => {
    await run(() => api("DELETE", `/websites/${encodeURIComponent(hostname)}/shares/${encodeURIComponent(share.id)}`), "Deleted: the link stops working at once.");
    setVersion((v) => v + 1);
  };
  return (
    <>
      <section class="card settings-form" aria-labelledby="shares-title" data-testid="share-links">
        <h2 id="shares-title">Share links</h2>
        {shares.error ? (
          <ErrorView error={shares.error} />
        ) : !shares.data ? (
          <Loading />
        ) : !shares.data.length ? (
          <Empty>No share links for {hostname}.</Empty>
        ) : (
          <ul class="share-list">
            {shares.data.map((share) => (
              <li key={share.id} class="share-item" data-share={share.id}>
                <p>
                  <strong>{share.name || "Unnamed link"}</strong>{" "}
                  <span class="muted small">
                    {share.k > 1 ? `hides rows under ${share.k} visitors` : "shows every row"}
                    {share.passwordProtected ? " · password" : ""}
                    {share.dateExpires ? ` · until ${day(share.dateExpires)}` : ""}
                    {share.panels.length ? ` · ${share.panels.length} lists` : ""}
                    {share.frameAncestors.length ? ` · embeddable on ${share.frameAncestors.join(", ")}` : ""}
                  </span>
                </p>
                <Snippet text={shareUrl(share)} label="Share link" />
                <button type="button" class="button small-button" onClick={() => remove(share)}>
                  Delete link
                </button>
              </li>
            ))}
          </ul>
        )}
        <Status state={state} />
      </section>
      <NewShare hostname={hostname} onDone={() => setVersion((v) => v + 1)} />
    </>
  );
}
