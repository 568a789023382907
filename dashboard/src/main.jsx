// Entry point: theme, header, and the route table (the path decides the page; the query holds its state).
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api } from "./api.js";
import { ErrorView } from "./components.jsx";
import { DATASETS } from "./datasets.js";
import { FirstPassword, Login, Logout, useConnection } from "./pages/auth.jsx";
import { Detail } from "./pages/detail.jsx";
import { Settings } from "./pages/settings.jsx";
import { SharePage } from "./pages/share.jsx";
import { SiteDashboard } from "./pages/site.jsx";
import { Websites } from "./pages/websites.jsx";
import { Link, useLocation } from "./router.jsx";
import { currentUser, onUserChange, setUser } from "./session.js";
import "./styles.css";
import { applyTheme, onThemeChange, setTheme, storedTheme } from "./theme.js";

const HOSTNAME = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/i;
const THEMES = { system: ["light", "Theme: system"], light: ["dark", "Theme: light"], dark: ["system", "Theme: dark"] };

function ThemeToggle() {
  const [theme, setLocal] = useState(storedTheme());
  useEffect(() => onThemeChange(() => setLocal(storedTheme())), []);
  const [next, label] = THEMES[theme];
  return (
    <button type="button" class="icon-button theme-toggle" onClick={() => setTheme(next)} aria-label={`${label}. Switch to ${next}.`} title={label}>
      <span aria-hidden="true">{theme === "dark" ? "☾" : theme === "light" ? "☀" : "◐"}</span>
    </button>
  );
}

const isShare = (path) => path.startsWith("/share/");
// Pages without the account's navigation: signing in and out, and a share link's dashboard (no account at all).
const isBare = (path) => path === "/login" || path === "/logout" || isShare(path);

function Header({ path, locked }) {
  const bare = isBare(path);
  const current = (prefix) => (prefix === "/" ? path !== "/" && !path.startsWith("/settings") : path.startsWith(prefix));
  return (
    <header class="header">
      <a class="skip-link" href="#main">
        Skip to content
      </a>
      <div class="header-inner">
        {isShare(path) ? (
          <span class="brand">
            <img src="/favicon.svg" alt="" width="24" height="24" />
            <span>Medama</span>
          </span>
        ) : (
          <Link href="/" class="brand" aria-label="Medama, my websites">
            <img src="/favicon.svg" alt="" width="24" height="24" />
            <span>Medama</span>
          </Link>
        )}
        <nav class="nav" aria-label="Main">
          {!bare && locked && <Link href="/logout">Log out</Link>}
          {!bare && !locked && (
            <>
              <Link href="/" aria-current={path === "/" ? "page" : current("/") ? "true" : undefined}>
                Websites
              </Link>
              <Link href="/settings/account" aria-current={current("/settings") ? "page" : undefined}>
                Settings
              </Link>
              <Link href="/logout">Log out</Link>
            </>
          )}
          <ThemeToggle />
        </nav>
      </div>
    </header>
  );
}

function NotFound() {
  return <ErrorView error={{ status: 404, message: "" }} title="Page not found" />;
}

function Page({ path, query }) {
  const parts = path.split("/").filter(Boolean).map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return "";
    }
  });
  if (parts.length === 0) return <Websites />;
  if (parts[0] === "login" && parts.length === 1) return <Login query={query} />;
  if (parts[0] === "logout" && parts.length === 1) return <Logout />;
  if (parts[0] === "settings" && parts.length <= 2) return <Settings section={parts[1]} query={query} />;
  if (parts[0] === "share" && (parts.length === 2 || parts.length === 3)) {
    return <SharePage key={parts[1]} id={parts[1]} name={parts[2]} query={query} />;
  }
  if (!HOSTNAME.test(parts[0])) return <NotFound />;
  if (parts.length === 1) return <SiteDashboard key={parts[0]} hostname={parts[0].toLowerCase()} query={query} />;
  if (parts.length === 2 && Object.hasOwn(DATASETS, parts[1])) {
    return <Detail key={parts[0] + "/" + parts[1]} hostname={parts[0].toLowerCase()} name={parts[1]} query={query} />;
  }
  return <NotFound />;
}

/** The signed-in account: known from the login page, else asked once per load (pages load meanwhile). */
function useUser(bare) {
  const [user, setLocal] = useState(currentUser());
  useEffect(() => onUserChange(() => setLocal(currentUser())), []);
  useEffect(() => {
    if (bare || currentUser() !== undefined) return;
    api("GET", "/user").then(setUser, () => {}); // a 401 sends the browser to the login page
  }, [bare]);
  return user;
}

/** Plain HTTP that the server allows (-securecookie=false): said on every page, since it never stops being true. */
function UnencryptedBanner() {
  return (
    <div class="banner" role="note" aria-label="Connection warning" data-testid="unencrypted-banner">
      <strong>This connection is not encrypted.</strong> The dashboard is open over plain HTTP, so your password and
      session travel readable by anyone on the network between you and the server. Use HTTPS (<code>-autossl</code>,{" "}
      <code>-tlscert</code> or a TLS proxy) or an SSH tunnel.
    </div>
  );
}

function App() {
  const { path, query } = useLocation();
  const bare = isBare(path);
  const user = useUser(bare);
  const state = useConnection();
  const locked = !bare && Boolean(user && user.passwordChangeRequired);
  return (
    <>
      <Header path={path} locked={locked} />
      {state === "unencrypted" && <UnencryptedBanner />}
      <main id="main" class="main" tabIndex={-1}>
        {locked ? <FirstPassword /> : <Page path={path} query={query} />}
      </main>
    </>
  );
}

applyTheme();
render(<App />, document.getElementById("app"));
