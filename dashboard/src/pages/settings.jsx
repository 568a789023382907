// Settings: account (and two-factor login), API keys, users (admins), websites (rename, delete, share links), spam
// (IP blocking), tracker (variants, snippet), usage. A viewer sees its account and keys only.
import { useEffect, useState } from "preact/hooks";
import { api } from "../api.js";
import { Empty, ErrorView, Loading, SnippetNote, Snippet } from "../components.jsx";
import { reasonText, siteDrops } from "../drops.js";
import { formatBytes, formatExact } from "../format.js";
import { useApi, useInterval, useSynced, useTitle } from "../hooks.js";
import { passwordProblem } from "../password.js";
import { Link, navigate } from "../router.jsx";
import { forgetLoginPassword, isAdmin, setUser, useCurrentUser } from "../session.js";
import { FEATURES } from "../insights.js";
import { checkPublicUrl, snippetFor, trackerBase } from "../snippet.js";
import { PasswordRules, currentPasswordError } from "./auth.jsx";
import { ApiKeys, ShareLinks, TwoFactor, Users } from "./access.jsx";
import { GoalSettings } from "./goals.jsx";
import { RawExport, SiteTracker } from "./insights.jsx";
import { DropSuggestions } from "./site.jsx";
import { cleanHostname } from "./websites.jsx";

// [key, title, for admins only]
const SECTIONS = [
  ["account", "Account", false],
  ["keys", "API keys", false],
  ["users", "Users", true],
  ["websites", "Websites", true],
  ["spam", "Spam", true],
  ["tracker", "Tracker", true],
  ["usage", "Usage", true],
];
const USAGE_POLL_MS = 3_000;

/** Run an async save; returns [busy, message, error, run]. */
export function useSave() {
  const [state, setState] = useState({ busy: false, message: "", error: "" });
  const run = async (fn, message = "Saved.") => {
    setState({ busy: true, message: "", error: "" });
    try {
      const result = await fn();
      setState({ busy: false, message, error: "" });
      return result;
    } catch (err) {
      setState({ busy: false, message: "", error: err.message || "Saving failed." });
      return undefined;
    }
  };
  return [state, run];
}

export function Status({ state }) {
  return (
    <p class={state.error ? "form-error" : "form-ok"} role={state.error ? "alert" : "status"}>
      {state.error || state.message}
    </p>
  );
}

function Account() {
  const { data: loaded, error } = useApi("/user");
  const [fresh, setFresh] = useState(null); // after a two-factor change
  const data = fresh || loaded;
  const [username, setUsername] = useState("");
  const [current, setCurrent] = useState("");
  const [password, setPassword] = useState("");
  const [confirm, setConfirm] = useState("");
  const [state, run] = useSave();
  const [invalid, setInvalid] = useState("");
  useEffect(() => {
    if (data) setUsername(data.username);
  }, [data]);
  if (error) return <ErrorView error={error} />;
  if (!data) return <Loading />;
  const submit = async (event) => {
    event.preventDefault();
    const name = username.trim();
    if (name.length < 3 || name.length > 48) return setInvalid("The username has 3 to 48 characters.");
    if (password || confirm) {
      const problem = passwordProblem(password, confirm);
      if (problem) return setInvalid(problem);
      if (!current) return setInvalid("Enter your current password to change it.");
    }
    setInvalid("");
    const body = { username: name, settings: { language: "en" } };
    if (password) {
      body.password = password;
      body.currentPassword = current; // CONTRACT 3: a password change proves the old one
    }
    const save = () => api("PATCH", "/user", { body }).catch((err) => Promise.reject(new Error(currentPasswordError(err))));
    const ok = await run(save, password ? "Saved. Use the new password next time." : "Saved.");
    if (ok !== undefined) {
      setCurrent("");
      setPassword("");
      setConfirm("");
    }
  };
  return (
    <div class="stack">
      <form class="card settings-form" onSubmit={submit} noValidate aria-labelledby="account-title">
        <h2 id="account-title">Account</h2>
        <label for="account-username">Username</label>
        <input id="account-username" autoComplete="username" value={username} onInput={(e) => setUsername(e.currentTarget.value)} />
        <fieldset class="password-fields">
          <legend>Change the password</legend>
          <label for="account-current">Current password</label>
          <input
            id="account-current"
            type="password"
            autoComplete="current-password"
            placeholder="Needed only to change the password"
            value={current}
            onInput={(e) => setCurrent(e.currentTarget.value)}
          />
          <label for="account-password">New password</label>
          <input
            id="account-password"
            type="password"
            autoComplete="new-password"
            placeholder="Leave empty to keep the current one"
            aria-describedby="account-rules"
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
          <label for="account-confirm">Repeat the new password</label>
          <input id="account-confirm" type="password" autoComplete="new-password" value={confirm} onInput={(e) => setConfirm(e.currentTarget.value)} />
          {(password || confirm) && <PasswordRules password={password} confirm={confirm} id="account-rules" />}
        </fieldset>
        {invalid ? (
          <p class="form-error" role="alert">
            {invalid}
          </p>
        ) : (
          <Status state={state} />
        )}
        <div class="form-actions">
          <button type="submit" class="button primary" disabled={state.busy}>
            Save
          </button>
        </div>
      </form>
      <TwoFactor user={data} onChange={setFresh} />
      <DeleteAccount username={data.username} />
    </div>
  );
}

function DeleteAccount({ username }) {
  const [current, setCurrent] = useState("");
  const [state, run] = useSave();
  const submit = async (event) => {
    event.preventDefault();
    if (!current) return run(() => Promise.reject(new Error("Enter your current password to delete the account.")));
    const remove = () =>
      api("DELETE", "/user", { body: { currentPassword: current } }).catch((err) => Promise.reject(new Error(currentPasswordError(err))));
    const done = await run(remove, "Deleted.");
    if (done === undefined) return undefined;
    forgetLoginPassword();
    setUser(undefined);
    navigate("/login?deleted=1", { replace: true });
    return undefined;
  };
  return (
    <form class="card settings-form danger" onSubmit={submit} noValidate aria-labelledby="delete-account-title">
      <h2 id="delete-account-title">Delete account</h2>
      <p>
        This deletes the account <strong>{username}</strong>, all its websites and all their stats. It cannot be undone.
      </p>
      <label for="delete-account-current">Current password</label>
      <input
        id="delete-account-current"
        type="password"
        autoComplete="current-password"
        value={current}
        onInput={(e) => setCurrent(e.currentTarget.value)}
      />
      {state.error && <Status state={state} />}
      <div class="form-actions">
        <button type="submit" class="button danger-button" disabled={state.busy}>
          Delete account
        </button>
      </div>
    </form>
  );
}

/** What was dropped for `hostname` in the last 30 days (GET /api/drops), plus hits for hostnames nobody registered. */
function DroppedHits({ hostname, websites }) {
  const { data, error } = useApi("/drops", null, `drops|${hostname}`);
  let body;
  if (error) {
    body = <ErrorView error={error} title="Dropped hits could not be loaded" children={<span />} />;
  } else if (data === undefined) {
    body = <Loading />;
  } else {
    const rows = siteDrops(data, hostname, websites);
    body = rows.length ? (
      <>
        <DropSuggestions drops={data} websites={websites} />
        <div class="table-wrap">
          <table class="table drops-table">
            <thead>
              <tr>
                <th scope="col" class="nowrap">
                  Day (UTC)
                </th>
                <th scope="col">Hostname</th>
                <th scope="col">Reason</th>
                <th scope="col" class="num">
                  Hits
                </th>
              </tr>
            </thead>
            <tbody>
              {rows.map((row) => {
                const reason = reasonText(row.reason);
                return (
                  <tr key={`${row.date}|${row.hostname}|${row.reason}`} data-reason={row.reason}>
                    <td class="nowrap">{row.date}</td>
                    <td>{row.hostname ? <code>{row.hostname}</code> : <span class="muted">not known</span>}</td>
                    <td>
                      <strong>{reason.title}</strong>
                      {reason.detail && <span class="muted">: {reason.detail}</span>}
                    </td>
                    <td class="num">{formatExact(row.hits)}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      </>
    ) : (
      <Empty>No hits for {hostname} (or for unknown sites) were dropped in the last 30 days.</Empty>
    );
  }
  return (
    <section class="card" aria-labelledby="drops-title" data-testid="dropped-hits">
      <h2 id="drops-title">Dropped hits</h2>
      <p class="muted">
        Hits the server received but did not count in the last 30 days, by day and reason: those for {hostname}, and those
        for hostnames that are not one of your websites (a typo in the snippet, or a site not added yet).
      </p>
      {body}
    </section>
  );
}

const IMPORT_TOOLS = [
  ["goatcounter", "GoatCounter (CSV export)"],
  ["umami", "Umami (website_event table as CSV)"],
  ["plausible", "Plausible (CSV export, zip)"],
];
const IMPORT_MAX_BYTES = 8 * 1024 * 1024; // the server's limit for an upload (api/upload.py)

/** The Umami website id the site answers to, so Umami's script keeps working with only its host changed. */
function UmamiId({ hostname }) {
  const { data } = useApi(`/websites/${encodeURIComponent(hostname)}`, null, `umami|${hostname}`);
  const [value, setValue] = useState("");
  const [loaded, setLoaded] = useState(undefined);
  const [state, run] = useSave();
  if (data !== loaded) {
    // Taken in the render that enables the field, not in an effect after it: an effect ran after the page
    // was drawn and wiped what had been typed meanwhile (the import test saw "Removed." under load).
    setLoaded(data);
    setValue((data && data.umamiWebsiteId) || "");
  }
  const submit = (event) => {
    event.preventDefault();
    const body = { umamiWebsiteId: value.trim() || null };
    run(() => api("PATCH", `/websites/${encodeURIComponent(hostname)}`, { body }), value.trim() ? "Saved." : "Removed.");
  };
  return (
    <form class="card settings-form" onSubmit={submit} noValidate aria-labelledby="umami-title" data-testid="umami-id">
      <h2 id="umami-title">Umami website id</h2>
      <p class="muted">
        Coming from Umami? Keep its script, point <code>data-host-url</code> here and enter its <code>data-website-id</code>.
      </p>
      <label for="umami-id">Website id</label>
      <input
        id="umami-id"
        value={value}
        disabled={!data}
        spellcheck={false}
        autoComplete="off"
        onInput={(e) => setValue(e.currentTarget.value)}
      />
      {(state.message || state.error) && <Status state={state} />}
      <div class="form-actions">
        <button type="submit" class="button" disabled={state.busy}>
          Save
        </button>
      </div>
    </form>
  );
}

/** Upload another tool's export (small files; larger ones: `medama import --from`). */
function ImportExport({ hostname }) {
  const [tool, setTool] = useState("goatcounter");
  const [file, setFile] = useState(null);
  const [state, run] = useSave();
  const [results, setResults] = useState(null);
  const send = async (dryRun) => {
    if (!file) return run(() => Promise.reject(new Error("Choose the exported file first.")));
    if (file.size > IMPORT_MAX_BYTES) {
      return run(() => Promise.reject(new Error("The file is over 8 MiB: import it with medama import --from on the server.")));
    }
    const query = { from: tool, name: file.name, dry_run: dryRun ? "true" : undefined };
    const answer = await run(
      () => api("POST", `/websites/${encodeURIComponent(hostname)}/import`, { query, raw: file }),
      dryRun ? "Checked: nothing was stored." : "Imported.",
    );
    setResults(answer ? answer.results : null);
    return undefined;
  };
  return (
    <form class="card settings-form" onSubmit={(e) => (e.preventDefault(), send(false))} aria-labelledby="import-title" data-testid="import">
      <h2 id="import-title">Import history</h2>
      <p class="muted">
        Load another tool's export into {hostname}. A file is stored whole or not at all; importing it again adds nothing.
      </p>
      <label for="import-tool">Exported from</label>
      <select id="import-tool" value={tool} onChange={(e) => setTool(e.currentTarget.value)}>
        {IMPORT_TOOLS.map(([key, title]) => (
          <option key={key} value={key}>
            {title}
          </option>
        ))}
      </select>
      <label for="import-file">File (up to 8 MiB)</label>
      <input id="import-file" type="file" onChange={(e) => setFile(e.currentTarget.files[0] || null)} />
      {(state.message || state.error) && <Status state={state} />}
      {results && (
        <ul class="muted small" data-testid="import-results">
          {results.map((r) => (
            <li key={r.kind}>
              {r.kind}: {formatExact(r.read)} read, {formatExact(r.stored)} stored
            </li>
          ))}
        </ul>
      )}
      <div class="form-actions">
        <button type="button" class="button" disabled={state.busy} onClick={() => send(true)}>
          Check only
        </button>
        <button type="submit" class="button primary" disabled={state.busy}>
          Import
        </button>
      </div>
    </form>
  );
}

function WebsiteSettings({ query }) {
  const [version, setVersion] = useState(0);
  const { data, error } = useApi("/websites", null, String(version));
  const chosen = query.get("website") || (data && data[0] && data[0].hostname) || "";
  const [rename, setRename] = useState("");
  const [confirm, setConfirm] = useState("");
  const [renameState, runRename] = useSave();
  const [deleteState, runDelete] = useSave();
  useEffect(() => {
    setRename(chosen);
    setConfirm("");
  }, [chosen]);
  if (error) return <ErrorView error={error} />;
  if (!data) return <Loading />;
  if (!data.length) {
    return (
      <div class="card">
        <h2>Websites</h2>
        <Empty>
          No websites yet. <Link href="/">Add one</Link> first.
        </Empty>
      </div>
    );
  }
  const pick = (hostname) => navigate(`/settings/websites?website=${encodeURIComponent(hostname)}`, { replace: true });
  const submitRename = async (event) => {
    event.preventDefault();
    const { hostname, error: bad } = cleanHostname(rename);
    if (bad) return runRename(() => Promise.reject(new Error(bad)));
    if (hostname === chosen) return undefined;
    const ok = await runRename(() => api("PATCH", `/websites/${encodeURIComponent(chosen)}`, { body: { hostname } }), `Renamed to ${hostname}.`);
    if (ok !== undefined) {
      setVersion((v) => v + 1);
      pick(hostname);
    }
    return undefined;
  };
  const submitDelete = async (event) => {
    event.preventDefault();
    if (confirm !== chosen) return;
    const ok = await runDelete(() => api("DELETE", `/websites/${encodeURIComponent(chosen)}`), `Deleted ${chosen}.`);
    if (ok !== undefined) {
      setVersion((v) => v + 1);
      navigate("/settings/websites", { replace: true });
    }
  };
  return (
    <div class="stack">
      <div class="card settings-form">
        <h2>Websites</h2>
        <label for="settings-website">Website</label>
        <select id="settings-website" value={chosen} onChange={(e) => pick(e.currentTarget.value)}>
          {data.map((s) => (
            <option key={s.hostname} value={s.hostname}>
              {s.hostname}
            </option>
          ))}
        </select>
        {deleteState.message && <Status state={deleteState} />}
      </div>
      <form class="card settings-form" onSubmit={submitRename} noValidate aria-labelledby="rename-title">
        <h2 id="rename-title">Rename</h2>
        <p class="muted">Moves the website and its stats to a new hostname. Update the tracker's site to match.</p>
        <label for="rename-hostname">New hostname</label>
        <input id="rename-hostname" value={rename} spellcheck={false} onInput={(e) => setRename(e.currentTarget.value)} />
        <Status state={renameState} />
        <div class="form-actions">
          <button type="submit" class="button primary" disabled={renameState.busy}>
            Rename
          </button>
        </div>
      </form>
      <SiteTracker hostname={chosen} />
      <GoalSettings hostname={chosen} />
      <RawExport hostname={chosen} />
      <ShareLinks hostname={chosen} />
      <DroppedHits hostname={chosen} websites={data} />
      <UmamiId hostname={chosen} />
      <ImportExport hostname={chosen} />
      <form class="card settings-form danger" onSubmit={submitDelete} aria-labelledby="delete-title">
        <h2 id="delete-title">Delete website</h2>
        <p>
          This deletes <strong>{chosen}</strong> and all its stats. It cannot be undone. Type the hostname to confirm.
        </p>
        <label for="delete-confirm">Hostname</label>
        <input id="delete-confirm" value={confirm} autoComplete="off" spellcheck={false} placeholder={chosen} onInput={(e) => setConfirm(e.currentTarget.value)} />
        {deleteState.error && <Status state={deleteState} />}
        <div class="form-actions">
          <button type="submit" class="button danger-button" disabled={confirm !== chosen || deleteState.busy}>
            Delete {chosen}
          </button>
        </div>
      </form>
    </div>
  );
}

function useTenant() {
  const { data, error } = useApi("/tenant/settings");
  const [settings, setSettings] = useState(null);
  useEffect(() => {
    if (data) setSettings(data);
  }, [data]);
  const patch = async (changes) => {
    const fresh = await api("PATCH", "/tenant/settings", { body: changes });
    setSettings(fresh);
    return fresh;
  };
  return { settings, error, patch };
}

const IP_TEXT = /^[0-9a-fA-F:.]+(\/\d{1,3})?$/;

function Spam() {
  const { settings, error, patch } = useTenant();
  const [abusive, setAbusive] = useState(true);
  const [tor, setTor] = useState(true);
  const [ip, setIp] = useState("");
  const [state, run] = useSave();
  const [ipState, runIp] = useSave();
  useEffect(() => {
    if (settings) {
      setAbusive(settings.blockAbusiveIPs);
      setTor(settings.blockTorExitNodes);
    }
  }, [settings]);
  if (error) return <ErrorView error={error} />;
  if (!settings) return <Loading />;
  const ips = settings.blockedIPs || [];
  const save = (event) => {
    event.preventDefault();
    run(() => patch({ blockAbusiveIPs: abusive, blockTorExitNodes: tor }));
  };
  const add = async (event) => {
    event.preventDefault();
    const value = ip.trim();
    if (!IP_TEXT.test(value)) return runIp(() => Promise.reject(new Error("Enter an IP address such as 203.0.113.7 (or a range such as 203.0.113.0/24).")));
    if (ips.includes(value)) return runIp(() => Promise.reject(new Error(`${value} is already blocked.`)));
    const ok = await runIp(() => patch({ blockedIPs: [...ips, value] }), `Blocked ${value}.`);
    if (ok !== undefined) setIp("");
    return undefined;
  };
  const remove = (value) => runIp(() => patch({ blockedIPs: ips.filter((x) => x !== value) }), `Unblocked ${value}.`);
  return (
    <div class="stack">
      <form class="card settings-form" onSubmit={save} aria-labelledby="spam-title">
        <h2 id="spam-title">Block lists</h2>
        <p class="muted">Hits from these addresses are dropped before they are stored. The lists ship with the server.</p>
        <label class="check">
          <input type="checkbox" checked={abusive} onChange={(e) => setAbusive(e.currentTarget.checked)} />
          <span>
            <strong>Abusive IPs</strong> — the FireHOL level 1 list of attackers, bogons and hijacked ranges.
          </span>
        </label>
        <label class="check">
          <input type="checkbox" checked={tor} onChange={(e) => setTor(e.currentTarget.checked)} />
          <span>
            <strong>Tor exit nodes</strong> — the Tor Project's list of exit relays.
          </span>
        </label>
        <Status state={state} />
        <div class="form-actions">
          <button type="submit" class="button primary" disabled={state.busy}>
            Save
          </button>
        </div>
      </form>
      <section class="card settings-form" aria-labelledby="ips-title">
        <h2 id="ips-title">Blocked IP addresses</h2>
        <form class="inline-form" onSubmit={add}>
          <label for="block-ip" class="visually-hidden">
            IP address to block
          </label>
          <input id="block-ip" placeholder="203.0.113.7" value={ip} spellcheck={false} onInput={(e) => setIp(e.currentTarget.value)} />
          <button type="submit" class="button primary" disabled={ipState.busy}>
            Add
          </button>
        </form>
        <Status state={ipState} />
        {ips.length ? (
          <ul class="ip-list">
            {ips.map((value) => (
              <li key={value}>
                <code>{value}</code>
                <button type="button" class="button small-button" aria-label={`Delete ${value}`} onClick={() => remove(value)}>
                  Delete
                </button>
              </li>
            ))}
          </ul>
        ) : (
          <Empty>No addresses blocked by hand.</Empty>
        )}
      </section>
    </div>
  );
}

const VARIANTS = FEATURES.map(([, key, title, help]) => [key, title, help]);

function Tracker() {
  const { settings, error, patch } = useTenant();
  if (error) return <ErrorView error={error} />;
  if (!settings) return <Loading />;
  return <TrackerForms settings={settings} patch={patch} />;
}

/** Drawn once the settings are in, so its fields start from them (useSynced) rather than being filled in later. */
function TrackerForms({ settings, patch }) {
  const savedVariants = (settings.script_type || []).filter((t) => t !== "default");
  const [chosen, setChosen] = useSynced(savedVariants, savedVariants.join(","));
  const [state, run] = useSave();
  const toggle = (key, on) => setChosen((list) => (on ? [...new Set([...list, key])] : list.filter((k) => k !== key)));
  const save = (event) => {
    event.preventDefault();
    const ordered = VARIANTS.map(([key]) => key).filter((key) => chosen.includes(key));
    run(() => patch({ script_type: ["default", ...ordered] }), "Saved. Browsers may keep the old script for up to 6 hours.");
  };
  return (
    <div class="stack">
      <form class="card settings-form" onSubmit={save} aria-labelledby="tracker-title">
        <h2 id="tracker-title">Tracker features</h2>
        <p class="muted">For every website, unless its own settings (Settings → Websites) say otherwise.</p>
        <label class="check">
          <input type="checkbox" checked disabled />
          <span>
            <strong>Default</strong> — page views, time on page and single-page navigation (always on).
          </span>
        </label>
        {VARIANTS.map(([key, title, help]) => (
          <label class="check" key={key}>
            <input type="checkbox" name={key} checked={chosen.includes(key)} onChange={(e) => toggle(key, e.currentTarget.checked)} />
            <span>
              <strong>{title}</strong> — {help}
            </span>
          </label>
        ))}
        <Status state={state} />
        <div class="form-actions">
          <button type="submit" class="button primary" disabled={state.busy}>
            Save
          </button>
        </div>
      </form>
      <PublicUrl settings={settings} patch={patch} />
      <section class="card" aria-labelledby="snippet-heading">
        <h2 id="snippet-heading">Tracking snippet</h2>
        <p class="muted">Add it to the &lt;head&gt; of every page of your websites.</p>
        <Snippet text={snippetFor(trackerBase(settings.public_url, location.origin))} />
        <SnippetNote base={trackerBase(settings.public_url, location.origin)} settingsLink={false} />
      </section>
    </div>
  );
}

/** The address visitors' browsers reach this server at (tenant setting public_url, CONTRACT 7), next to this page's own. */
function PublicUrl({ settings, patch }) {
  const saved = typeof settings.public_url === "string" ? settings.public_url : "";
  const [value, setValue] = useSynced(saved);
  const [state, run] = useSave();
  const save = (event) => {
    event.preventDefault();
    const checked = checkPublicUrl(value);
    if (checked.error) return run(() => Promise.reject(new Error(checked.error)));
    return run(() => patch({ public_url: checked.value }), checked.value ? "Saved. The snippet uses it now." : "Cleared. The snippet uses this page's address.");
  };
  return (
    <form class="card settings-form" onSubmit={save} noValidate aria-labelledby="public-url-title">
      <h2 id="public-url-title">Public address</h2>
      <p class="muted">
        The address your visitors' browsers reach this server at, used in the snippet. Set it when you opened this
        dashboard some other way (through an SSH tunnel, on localhost, or an internal name).
      </p>
      <dl class="addresses">
        <div>
          <dt>Used in the snippet</dt>
          <dd>
            <code data-testid="snippet-base">{trackerBase(saved, location.origin)}</code>
            {saved ? "" : " (this page's address, as no public address is set)"}
          </dd>
        </div>
        <div>
          <dt>This dashboard's address</dt>
          <dd>
            <code data-testid="dashboard-origin">{location.origin}</code>
          </dd>
        </div>
      </dl>
      <label for="public-url">Public address</label>
      <input
        id="public-url"
        type="url"
        inputMode="url"
        spellcheck={false}
        placeholder="https://stats.example.com (empty: this page's address)"
        value={value}
        onInput={(e) => setValue(e.currentTarget.value)}
      />
      <Status state={state} />
      <div class="form-actions">
        <button type="submit" class="button primary" disabled={state.busy}>
          Set address
        </button>
      </div>
    </form>
  );
}

function Meter({ label, value, total, detail }) {
  const share = total > 0 ? Math.min(1, Math.max(0, value / total)) : 0;
  return (
    <section class="card meter" aria-label={label}>
      <h3>{label}</h3>
      <p class="meter-value">{(share * 100).toFixed(1)}%</p>
      <div class="progress" role="progressbar" aria-label={`${label} in use`} aria-valuemin="0" aria-valuemax="100" aria-valuenow={(share * 100).toFixed(1)}>
        <span style={{ width: `${(share * 100).toFixed(1)}%` }} />
      </div>
      <p class="muted small">{detail}</p>
    </section>
  );
}

function Usage() {
  const { data, error, reload } = useApi("/settings/usage");
  useInterval(reload, USAGE_POLL_MS);
  const [threads, setThreads] = useState("");
  const [memory, setMemory] = useState("");
  const [loaded, setLoaded] = useState(false);
  const [state, run] = useSave();
  useEffect(() => {
    if (data && data.metadata && !loaded) {
      setThreads(String(data.metadata.threads ?? ""));
      setMemory(data.metadata.memory_limit || "");
      setLoaded(true);
    }
  }, [data]);
  if (error && !data) return <ErrorView error={error} />;
  if (!data) return <Loading />;
  const save = (event) => {
    event.preventDefault();
    const body = { memory_limit: memory.trim() };
    const n = Number(threads);
    if (threads !== "") {
      if (!Number.isInteger(n) || n < 1 || n > 64) return run(() => Promise.reject(new Error("Threads: a whole number from 1 to 64.")));
      body.threads = n;
    }
    return run(() => api("PATCH", "/settings/usage", { body }));
  };
  const { cpu, memory: mem, disk } = data;
  return (
    <div class="stack">
      <div class="meters">
        <Meter label="CPU" value={cpu.usage} total={100} detail={`${cpu.cores} cores, ${cpu.threads} threads`} />
        <Meter label="Memory" value={mem.used} total={mem.total} detail={`${formatBytes(mem.used)} of ${formatBytes(mem.total)}`} />
        <Meter label="Disk" value={disk.used} total={disk.total} detail={`${formatBytes(disk.used)} of ${formatBytes(disk.total)}`} />
      </div>
      <p class="muted small">Refreshed every {USAGE_POLL_MS / 1000} seconds.</p>
      <form class="card settings-form" onSubmit={save} noValidate aria-labelledby="engine-title">
        <h2 id="engine-title">Engine limits</h2>
        <label for="engine-threads">Reader threads</label>
        <input id="engine-threads" type="number" min="1" max="64" inputMode="numeric" value={threads} onInput={(e) => setThreads(e.currentTarget.value)} />
        <label for="engine-memory">Memory limit</label>
        <input id="engine-memory" placeholder="e.g. 256MiB; empty for no limit" value={memory} onInput={(e) => setMemory(e.currentTarget.value)} />
        <Status state={state} />
        <div class="form-actions">
          <button type="submit" class="button primary" disabled={state.busy}>
            Save
          </button>
        </div>
      </form>
    </div>
  );
}

export function Settings({ section, query }) {
  const me = useCurrentUser();
  const admin = isAdmin(me);
  const sections = SECTIONS.filter(([, , adminOnly]) => admin || !adminOnly);
  const known = sections.some(([key]) => key === section);
  useEffect(() => {
    if (!known) navigate("/settings/account", { replace: true });
  }, [known]);
  const title = known ? sections.find(([key]) => key === section)[1] : "Settings";
  useTitle(`${title} · Settings`);
  if (!known) return null;
  return (
    <div class="settings">
      <h1>Settings</h1>
      <div class="settings-layout">
        <nav class="settings-nav" aria-label="Settings">
          <ul>
            {sections.map(([key, label]) => (
              <li key={key}>
                <Link href={`/settings/${key}`} aria-current={key === section ? "page" : undefined}>
                  {label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <div class="settings-main">
          {section === "account" && <Account />}
          {section === "keys" && <ApiKeys />}
          {section === "users" && <Users me={me && me.username} />}
          {section === "websites" && <WebsiteSettings query={query} />}
          {section === "spam" && <Spam />}
          {section === "tracker" && <Tracker />}
          {section === "usage" && <Usage />}
        </div>
      </div>
    </div>
  );
}
