// Data-loading hooks: fetch on change, keep showing the old data while the new loads, abort stale calls.
import { useEffect, useRef, useState } from "preact/hooks";
import { get } from "./api.js";

/**
 * GET `/api${path}` with `query` whenever `key` (a string of everything the call depends on) changes.
 * Pass path = null to skip. Returns { data, error, loading, stale, reload }: `stale` is true while `data` still
 * answers an earlier path or key (from the render that changed them until the new answer), and `loading` is true
 * then too, so a view that shows a different list per key can wait instead of drawing old rows in new columns.
 */
export function useApi(path, query, key = "") {
  const asked = `${path}\u0000${key}`;
  const [state, setState] = useState({ data: undefined, error: null, loading: path !== null, asked });
  const [nonce, setNonce] = useState(0);
  const queryRef = useRef(query);
  queryRef.current = query;
  useEffect(() => {
    if (path === null) {
      setState({ data: undefined, error: null, loading: false, asked });
      return undefined;
    }
    const controller = new AbortController();
    setState((s) => ({ ...s, loading: true }));
    get(path, queryRef.current, { signal: controller.signal }).then(
      (data) => setState({ data, error: null, loading: false, asked }),
      (error) => {
        if (error.name !== "AbortError") setState({ data: undefined, error, loading: false, asked });
      },
    );
    return () => controller.abort();
  }, [path, key, nonce]);
  const stale = path !== null && state.asked !== asked;
  return {
    data: state.data,
    error: stale ? null : state.error,
    loading: state.loading || stale,
    stale,
    reload: () => setNonce((n) => n + 1),
  };
}

/**
 * A form field's state: starts at `saved` and follows it when it changes later (`key`, a string, says when), but
 * not on mount, so nothing typed or ticked before the first effects run is overwritten.
 */
export function useSynced(saved, key = String(saved)) {
  const [value, setValue] = useState(saved);
  const last = useRef(key);
  useEffect(() => {
    if (last.current === key) return;
    last.current = key;
    setValue(saved);
  }, [key]);
  return [value, setValue];
}

/** Call `fn` every `ms` while `enabled` (and the tab is visible). */
export function useInterval(fn, ms, enabled = true) {
  const saved = useRef(fn);
  saved.current = fn;
  useEffect(() => {
    if (!enabled) return undefined;
    const id = setInterval(() => {
      if (document.visibilityState !== "hidden") saved.current();
    }, ms);
    return () => clearInterval(id);
  }, [ms, enabled]);
}

export function useTitle(title) {
  useEffect(() => {
    document.title = title ? `${title} · Medama` : "Medama";
  }, [title]);
}
