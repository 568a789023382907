// A tiny history router: the whole URL (path and query) is the app state.
import { useEffect, useState } from "preact/hooks";

const listeners = new Set();

function notify() {
  for (const listener of listeners) listener();
}

window.addEventListener("popstate", notify);

/** Go to `to` (a same-origin path with query); `replace` keeps the history length. */
export function navigate(to, { replace = false } = {}) {
  const before = location.pathname;
  if (to === location.pathname + location.search) return;
  history[replace ? "replaceState" : "pushState"](null, "", to);
  notify();
  if (!replace && before !== location.pathname) window.scrollTo(0, 0);
}

/** Re-render on every navigation; returns the current path and parsed query. */
export function useLocation() {
  const [, setTick] = useState(0);
  const rendered = location.pathname + location.search;
  useEffect(() => {
    const listener = () => setTick((n) => n + 1);
    listeners.add(listener);
    // A child's effect may have navigated before this one subscribed (children's effects run first).
    if (location.pathname + location.search !== rendered) listener();
    return () => listeners.delete(listener);
  }, []);
  return { path: location.pathname, search: location.search, query: new URLSearchParams(location.search) };
}

/** Only local paths: never "//host" or "/\host", which browsers treat as another origin. */
export function safeRedirect(target) {
  if (typeof target !== "string" || !target.startsWith("/") || target.startsWith("//") || target.startsWith("/\\")) {
    return "/";
  }
  return target;
}

/** An <a> that navigates without a page load (modified clicks still open a new tab). */
export function Link({ href, replace, onClick, children, ...rest }) {
  const click = (event) => {
    if (onClick) onClick(event);
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) {
      return;
    }
    event.preventDefault();
    navigate(href, { replace });
  };
  return (
    <a href={href} onClick={click} {...rest}>
      {children}
    </a>
  );
}
