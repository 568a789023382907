// Login (honours ?redirect=) and logout.
import { useEffect, useState } from "preact/hooks";
import { api, ApiError } from "../api.js";
import { useTitle } from "../hooks.js";
import { Link, navigate, safeRedirect } from "../router.jsx";

export function Login({ query }) {
  useTitle("Log in");
  const target = safeRedirect(query.get("redirect") || "/");
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    // Already logged in (a valid session cookie)? Go straight on.
    const controller = new AbortController();
    api("GET", "/user", { auth: false, signal: controller.signal }).then(
      () => navigate(target, { replace: true }),
      () => {},
    );
    return () => controller.abort();
  }, []);

  const submit = async (event) => {
    event.preventDefault();
    if (username.trim().length < 3) return setError("The username has at least 3 characters.");
    if (password.length < 5) return setError("The password has at least 5 characters.");
    setBusy(true);
    setError("");
    try {
      await api("POST", "/auth/login", { body: { username: username.trim(), password }, auth: false });
      navigate(target, { replace: true });
    } catch (err) {
      setBusy(false);
      if (err instanceof ApiError && (err.status === 401 || err.status === 404)) {
        setError("Wrong username or password.");
      } else if (err instanceof ApiError && err.status === 429) {
        setError("Too many attempts. Wait a minute, then try again.");
      } else {
        setError(err.message || "Login failed.");
      }
    }
  };

  return (
    <section class="auth-card card">
      <h1>Log in</h1>
      <form onSubmit={submit} noValidate>
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
        <p class="form-error" role="alert">
          {error}
        </p>
        <button type="submit" class="button primary" disabled={busy}>
          {busy ? "Logging in…" : "Log in"}
        </button>
      </form>
      <p class="muted small">Logging in needs HTTPS, or the dashboard opened as http://localhost.</p>
    </section>
  );
}

export function Logout() {
  useTitle("Logged out");
  const [done, setDone] = useState(false);
  useEffect(() => {
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
