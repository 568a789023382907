// The signed-in account as the whole app sees it, the server's cookie rule, and the login password (memory only).
import { useEffect, useState } from "preact/hooks";
import { api } from "./api.js";

let user; // the last GET /api/user answer; undefined until known
const listeners = new Set();

export function currentUser() {
  return user;
}

export function setUser(next) {
  user = next;
  for (const listener of listeners) listener();
}

export function onUserChange(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** The signed-in account in a component, re-rendered when it becomes known or changes. */
export function useCurrentUser() {
  const [me, setMe] = useState(user);
  useEffect(() => onUserChange(() => setMe(user)), []);
  return me;
}

/** Whether the account may manage sites, settings and accounts; while unknown, or from a server without roles, yes. */
export function isAdmin(me) {
  return !me || !me.role || me.role === "admin";
}

// The password just typed at login, kept only in this tab's memory (never stored) so the forced first change can
// send it as currentPassword (CONTRACT 2, 3). Gone on reload: the change screen then asks for it.
let loginPassword = null;

export function rememberLoginPassword(password) {
  loginPassword = password;
}

export function loginPasswordValue() {
  return loginPassword;
}

export function forgetLoginPassword() {
  loginPassword = null;
}

let config = null;

/**
 * GET /api/auth/config once per page load: `{ secureCookie }`. A server without it (older than the setting) always
 * sent Secure cookies, so a failure reads as `{ secureCookie: true }`.
 */
export function authConfig() {
  if (!config) {
    config = api("GET", "/auth/config", { auth: false }).then(
      (data) => ({ secureCookie: !(data && data.secureCookie === false) }),
      () => ({ secureCookie: true }),
    );
  }
  return config;
}
