// Login (honours ?redirect=, explains plain-HTTP pages before a password is typed), logout, the forced first change.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, ApiError } from "../api.js";
import { Snippet } from "../components.jsx";
import { useTitle } from "../hooks.js";
import { passwordProblem, passwordRules } from "../password.js";
import { connection, tunnel } from "../security.js";
import { authConfig, currentUser, forgetLoginPassword, loginPasswordValue, rememberLoginPassword, setUser } from "../session.js";
import { Link, navigate, safeRedirect } from "../router.jsx";

/** The connection state of this page: "ok", "cookie-refused" or "unencrypted" (undefined while asking the server). */
export function useConnection() {
  const secure = window.isSecureContext;
  const [state, setState] = useState(secure ? "ok" : undefined);
  useEffect(() => {
    if (secure) return;
    authConfig().then((config) => setState(connection(false, config.secureCookie)));
  }, []);
  return state;
}

/** Plain HTTP while the session cookie is Secure: what to do instead, said before anyone types a password. */
function CookieAdvice() {
  const { command, url } = tunnel(location);
  return (
    <section class="callout warning" id="login-advice" aria-labelledby="login-advice-title">
      <h2 id="login-advice-title">Logging in will not work on this address</h2>
      <p>
        This page came over plain HTTP (<code>{location.host}</code>), and this server marks its session cookie
        <em> Secure</em>: browsers keep such a cookie only over HTTPS or on <code>http://localhost</code>. The password
        would be checked, then the browser would drop the cookie and you would land here again. Any one of these works:
      </p>
      <ul>
        <li>
          Give the server HTTPS: start it with <code>-autossl your.domain</code> (a free Let's Encrypt certificate) or{" "}
          <code>-tlscert</code>/<code>-tlskey</code> with your own, or put it behind a TLS proxy (Caddy, nginx, Traefik)
          and open its <code>https://</code> address.
        </li>
        <li>
          Or reach it through an SSH tunnel from your computer (replace <code>user</code> with your login on the server):
          <Snippet text={command} label="SSH tunnel command" />
          then open <a href={url}>{url}</a>.
        </li>
      </ul>
      <p class="muted small">
        On a network you trust completely, <code>-securecookie=false</code> lets logins work over plain HTTP, but then the
        password and the session cross the network unencrypted.
      </p>
    </section>
  );
}

/** What happened when the login was accepted but the next call still came back 401. */
function refusedCookieText(secureContext) {
  if (!secureContext) {
    return (
      `The password was right, but your browser refused the session cookie: this server sends it only for HTTPS ` +
      `(it is marked Secure) and this page is plain HTTP at ${location.host}. Use HTTPS or the SSH tunnel described above.`
    );
  }
  return (
    "The password was right, but your browser did not keep the session cookie, so you are still logged out. " +
    "Cookies may be blocked for this site (browser settings or an extension), or a proxy in front of the server drops them."
  );
}

export function Login({ query }) {
  useTitle("Log in");
  const target = safeRedirect(query.get("redirect") || "/");
  const state = useConnection();
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [code, setCode] = useState("");
  const [needCode, setNeedCode] = useState(false); // the password was right; the account has two-factor login
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    // Already logged in (a valid session cookie)? Go straight on.
    const controller = new AbortController();
    api("GET", "/user", { auth: false, signal: controller.signal }).then(
      (user) => {
        setUser(user);
        navigate(target, { replace: true });
      },
      () => {},
    );
    return () => controller.abort();
  }, []);

  const submit = async (event) => {
    event.preventDefault();
    if (username.trim().length < 3) return setError("The username has at least 3 characters.");
    if (password.length < 5) return setError("The password has at least 5 characters.");
    if (needCode && !code.trim()) return setError("Enter the code from your authenticator app, or a recovery code.");
    setBusy(true);
    setError("");
    const body = { username: username.trim(), password };
    if (needCode) body.code = code.trim();
    try {
      await api("POST", "/auth/login", { body, auth: false });
    } catch (err) {
      setBusy(false);
      if (err instanceof ApiError && err.status === 401 && err.message === TOTP_REQUIRED) {
        setNeedCode(true); // the second step: the same form asks for the code
      } else if (err instanceof ApiError && err.status === 401 && err.message === TOTP_WRONG) {
        setCode("");
        setError("That code is not right, or was used already. Codes change every 30 seconds.");
      } else if (err instanceof ApiError && (err.status === 401 || err.status === 404)) {
        setNeedCode(false);
        setError("Wrong username or password.");
      } else if (err instanceof ApiError && err.status === 429) {
        setError("Too many attempts. Wait a minute, then try again.");
      } else {
        setError(err.message || "Login failed.");
      }
      return undefined;
    }
    // Did the browser keep the cookie? Never end a login in a silently cleared form.
    let user;
    try {
      user = await api("GET", "/user", { auth: false });
    } catch (err) {
      setBusy(false);
      setError(err instanceof ApiError && err.status === 401 ? refusedCookieText(window.isSecureContext) : err.message || "Login failed.");
      return undefined;
    }
    if (user && user.passwordChangeRequired) rememberLoginPassword(password);
    setUser(user);
    navigate(target, { replace: true });
    return undefined;
  };

  const advice = state === "cookie-refused";
  return (
    <section class={advice ? "auth-card card wide" : "auth-card card"}>
      <h1>Log in</h1>
      {query.get("deleted") === "1" && (
        <p class="form-ok" role="status">
          Your account was deleted.
        </p>
      )}
      {advice && <CookieAdvice />}
      <form onSubmit={submit} noValidate aria-describedby={advice ? "login-advice-title" : undefined}>
        <label for="login-username">Username</label>
        <input
          id="login-username"
          name="username"
          autoComplete="username"
          required
          minLength={3}
          maxLength={48}
          value={username}
          onInput={(e) => setUsername(e.currentTarget.value)}
        />
        <label for="login-password">Password</label>
        <input
          id="login-password"
          name="password"
          type="password"
          autoComplete="current-password"
          required
          minLength={5}
          maxLength={128}
          value={password}
          onInput={(e) => setPassword(e.currentTarget.value)}
        />
        {needCode && <CodeField code={code} setCode={setCode} />}
        <p class="form-error" role="alert">
          {error}
        </p>
        <button type="submit" class="button primary" disabled={busy}>
          {busy ? "Logging in…" : needCode ? "Check the code" : "Log in"}
        </button>
      </form>
      {/* Not on a plain-HTTP page that -securecookie=false lets log in: the banner above says what holds there. */}
      {state === "ok" && <p class="muted small">Logging in needs HTTPS, or the dashboard opened as http://localhost.</p>}
    </section>
  );
}

const TOTP_REQUIRED = "two-factor code required"; // api/auth.py's answers to a right password
const TOTP_WRONG = "two-factor code is wrong";

/** The login's second step: the code of the account's authenticator app (or one of its recovery codes). */
function CodeField({ code, setCode }) {
  const ref = useRef(null);
  useEffect(() => ref.current && ref.current.focus(), []);
  return (
    <div class="code-step" data-testid="login-code">
      <label for="login-code">Two-factor code</label>
      <input
        id="login-code"
        name="code"
        ref={ref}
        inputMode="numeric"
        autoComplete="one-time-code"
        maxLength={32}
        aria-describedby="login-code-help"
        value={code}
        onInput={(e) => setCode(e.currentTarget.value)}
      />
      <p id="login-code-help" class="muted small">
        The 6 digits your authenticator app shows for Medama, or one of your recovery codes.
      </p>
    </div>
  );
}

/** The password rules, each marked met or not as the user types (CONTRACT 4). */
export function PasswordRules({ password, confirm, id }) {
  return (
    <ul class="rules" id={id} aria-label="Password rules">
      {passwordRules(password, confirm).map((rule) => (
        <li key={rule.key} class={rule.ok ? "rule ok" : "rule"} data-rule={rule.key} data-ok={rule.ok ? "true" : "false"}>
          <span aria-hidden="true" class="rule-mark">
            {rule.ok ? "✓" : "○"}
          </span>{" "}
          {rule.text}
          <span class="visually-hidden">{rule.ok ? " (met)" : " (not met yet)"}</span>
        </li>
      ))}
    </ul>
  );
}

/** The 403 of CONTRACT 3, said plainly; other errors keep the server's words. */
export function currentPasswordError(err) {
  if (err instanceof ApiError && err.status === 403) return "The current password is wrong.";
  if (err instanceof ApiError && err.status === 429) return "Too many wrong passwords. Wait a minute, then try again.";
  return err.message || "Saving failed.";
}

/** Shown instead of every page while the account still has the first-start password (CONTRACT 2). */
export function FirstPassword() {
  useTitle("Choose a new password");
  const remembered = loginPasswordValue();
  const [current, setCurrent] = useState("");
  const [askCurrent, setAskCurrent] = useState(remembered === null);
  const [password, setPassword] = useState("");
  const [confirm, setConfirm] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const submit = async (event) => {
    event.preventDefault();
    const problem = passwordProblem(password, confirm);
    if (problem) return setError(problem);
    const currentPassword = askCurrent ? current : remembered;
    if (!currentPassword) return setError("Enter your current password.");
    setBusy(true);
    setError("");
    try {
      await api("PATCH", "/user", { body: { password, currentPassword } });
    } catch (err) {
      setBusy(false);
      if (err instanceof ApiError && err.status === 403) {
        forgetLoginPassword();
        setAskCurrent(true);
      }
      setError(currentPasswordError(err));
      return undefined;
    }
    forgetLoginPassword();
    const user = currentUser();
    setUser({ ...(user || {}), passwordChangeRequired: false });
    return undefined;
  };
  return (
    <section class="auth-card card" aria-labelledby="first-password-title">
      <h1 id="first-password-title">Choose a new password</h1>
      <p>
        This account still has the password every new server starts with, which anyone can look up. Choose your own
        before going on.
      </p>
      <form onSubmit={submit} noValidate>
        {askCurrent && (
          <>
            <label for="first-current">Current password</label>
            <input
              id="first-current"
              type="password"
              autoComplete="current-password"
              value={current}
              onInput={(e) => setCurrent(e.currentTarget.value)}
            />
          </>
        )}
        <label for="first-password">New password</label>
        <input
          id="first-password"
          type="password"
          autoComplete="new-password"
          aria-describedby="first-rules"
          value={password}
          onInput={(e) => setPassword(e.currentTarget.value)}
        />
        <label for="first-confirm">Repeat the new password</label>
        <input
          id="first-confirm"
          type="password"
          autoComplete="new-password"
          value={confirm}
          onInput={(e) => setConfirm(e.currentTarget.value)}
        />
        <PasswordRules password={password} confirm={confirm} id="first-rules" />
        <p class="form-error" role="alert">
          {error}
        </p>
        <button type="submit" class="button primary" disabled={busy}>
          {busy ? "Saving…" : "Save and continue"}
        </button>
      </form>
    </section>
  );
}

export function Logout() {
  useTitle("Logged out");
  const [done, setDone] = useState(false);
  useEffect(() => {
    forgetLoginPassword();
    setUser(undefined);
    api("POST", "/auth/logout", { auth: false }).then(
      () => setDone(true),
      () => setDone(true), // no session to end: the user is logged out either way
    );
  }, []);
  return (
    <section class="auth-card card">
      <h1>{done ? "You have been logged out." : "Logging out…"}</h1>
      {done && (
        <p>
          <Link href="/login">Log in again</Link>
        </p>
      )}
    </section>
  );
}
