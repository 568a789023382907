// Light/dark theme: follows the OS unless the user picks one; the choice is kept in localStorage.
const KEY = "medama-theme";
const listeners = new Set();

export function storedTheme() {
  try {
    const value = localStorage.getItem(KEY);
    return value === "light" || value === "dark" ? value : "system";
  } catch {
    return "system";
  }
}

export function effectiveTheme() {
  const stored = storedTheme();
  if (stored !== "system") return stored;
  return matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

export function applyTheme() {
  const stored = storedTheme();
  if (stored === "system") document.documentElement.removeAttribute("data-theme");
  else document.documentElement.setAttribute("data-theme", stored);
  for (const listener of listeners) listener();
}

export function setTheme(value) {
  try {
    if (value === "system") localStorage.removeItem(KEY);
    else localStorage.setItem(KEY, value);
  } catch {
    // private mode: the choice lasts for this page only
  }
  applyTheme();
}

export function onThemeChange(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

matchMedia("(prefers-color-scheme: dark)").addEventListener("change", applyTheme);
