// Medama tracker: page views, visible time on page, history/hash navigation and,
// in some builds, page properties (PAGE_EVENTS), click events (CLICK_EVENTS),
// clicks on links to other sites (OUTBOUND_LINKS) and to files (FILE_DOWNLOADS),
// and views of not-found pages (NOT_FOUND_PAGES).
// No cookies, no storage, no fingerprinting: a visitor's "unique today" and
// "first view of this page today" come from the browser's HTTP cache (see
// /api/event/ping in docs/tracker.md).
//
// This file is the single source. scripts/build_tracker.py keeps or drops each
// block between an "@if FLAG" and an "@endif" directive comment (FLAG may be
// "A|B": kept if any is on), then minifies every variant (each subset of the
// flags) into medama_core/static/scripts/.
//
// Size rules: the served files are judged by their gzip size (budgets: 800 bytes
// for the default build, 1,400 with every feature), so repeat the same words
// rather than invent new ones, and let terser shorten the names.
(() => {
	// currentScript is only set while this file first runs, and never for module
	// scripts: fall back to the last tag that looks like ours, or do nothing.
	let script = document.currentScript;
	if (!script) {
		for (const tag of document.scripts) {
			if (/\/script\.js|\/scripts\//.test(tag.src)) script = tag;
		}
		if (!script) return;
	}

	const data = script.dataset;

	// data-api="host/path" uses the page's protocol; otherwise the API sits
	// next to the script: /script.js and /scripts/<variant>.js both give /api/.
	const api = data.api
		? location.protocol + "//" + data.api + "/"
		: script.src.replace(/(scripts\/)?[^/]*$/, "api/");

	// Hash mode: every "#route" is a page of its own. `true` or undefined, so
	// that JSON.stringify leaves "h" out of load beacons unless it is on.
	const hashMode = !!data.hash || undefined;

	// The per-view state. `unique` stays undefined until the first ping answers,
	// and is spent (set to false) by the first load beacon that goes out. Each
	// load beacon sent makes its URL the `referrer` of the next in-page view (an
	// SPA route change), so the server counts an internal arrival from it, not
	// an entry (entry and exit pages, docs/insights.md).
	let id, visible, since, route, unique, referrer = document.referrer;

	/*@if NOT_FOUND_PAGES*/
	// The HTTP status of the page as loaded (Navigation Timing: Chromium 109+;
	// undefined elsewhere), spent by the first load beacon.
	let status = (performance.getEntriesByType("navigation")[0] || {}).responseStatus;
	/*@endif*/

	/*@if FILE_DOWNLOADS*/
	// File extensions that count as downloads. The server serves each site's
	// own list (/script.js?site=) by replacing this exact text in the build.
	const downloads = RegExp("\\.(pdf|zip|gz|tgz|bz2|xz|7z|rar|dmg|exe|msi|pkg|deb|rpm|apk|iso|csv|xls|xlsx|doc|docx|ppt|pptx|odt|ods|odp|rtf|txt|epub|mp3|wav|flac|mp4|mov|avi|mkv|webm)$", "i");
	/*@endif*/

	const currentRoute = () => location.pathname + (hashMode ? location.hash : "");

	// A new page view: a fresh beacon id (time first, so ids sort by creation),
	// and the visible-time clock restarted.
	const newView = () => {
		id = Date.now().toString(36) + Math.random().toString(36).slice(2);
		visible = 0;
		onVisibility();
		route = currentRoute();
	};

	// A string body is sent as text/plain and no-cors skips CORS entirely, so
	// this never needs a preflight; keepalive lets it outlive the page.
	const post = (body) =>
		fetch(api + "event/hit", {
			method: "POST",
			body: JSON.stringify(body),
			mode: "no-cors",
			keepalive: true,
		});

	// The server answers "0" when the browser's cache had no copy from today.
	// A plain GET without custom headers: no preflight. On a network error
	// onload never fires and nothing is sent, as upstream does.
	const ping = (query, then) => {
		const xhr = new XMLHttpRequest();
		xhr.onload = () => then(xhr.responseText == "0");
		xhr.open("GET", api + "event/ping" + query);
		xhr.send();
	};

	/*@if CLICK_EVENTS|OUTBOUND_LINKS|FILE_DOWNLOADS*/
	const custom = (props) => post({ b: id, e: "custom", g: location.hostname, d: props });
	/*@endif*/

	/*@if CLICK_EVENTS|PAGE_EVENTS*/
	// "k1=v1; k2=v2" -> {k1: "v1", k2: "v2"}. Of "a=b=c" only "a" and "b"
	// count; a pair with an empty key or value is skipped.
	const parse = (tag, attribute, into) => {
		for (const pair of tag.getAttribute(attribute).split(";")) {
			const [key, value] = pair.split("=").map((part) => part.trim());
			if (key && value) into[key] = value;
		}
		return into;
	};
	/*@endif*/

	// The view's load beacon, once the per-route ping says whether this is the
	// first view of the route today. A view that was left before then (a
	// redirect, say) is dropped rather than sent under the next view's id.
	const load = () => {
		const view = id;
		ping("?u=" + encodeURIComponent(location.host + route), (first) => {
			if (view == id) {
				/*@if PAGE_EVENTS|NOT_FOUND_PAGES*/
				const props = {};
				/*@endif*/
				/*@if PAGE_EVENTS*/
				// Read now, not at navigation time, so the new route's markup is
				// there; later elements win.
				for (const tag of document.querySelectorAll("[data-m\\:load]")) {
					parse(tag, "data-m:load", props);
				}
				/*@endif*/
				/*@if NOT_FOUND_PAGES*/
				// A not-found page: the site marks it with a data-m:404 attribute
				// (on any element: the script tag, <body>, an SPA's not-found view),
				// or, for the page the visitor landed on, the browser reports the
				// HTTP status 404 (Chromium does). The value is the route, cut to
				// 256 characters: the server refuses a load whose properties pass
				// 1,024 bytes, and this one shares them with data-m:load's.
				if (document.querySelector("[data-m\\:404]") || status == 404) props[404] = route.slice(0, 256);
				status = 0;
				/*@endif*/
				post({
					b: id,
					e: "load",
					u: location.href,
					r: referrer,
					p: unique,
					q: first,
					t: Intl.DateTimeFormat().resolvedOptions().timeZone,
					h: hashMode,
					/*@if PAGE_EVENTS|NOT_FOUND_PAGES*/
					d: props,
					/*@endif*/
				});
				unique = false;
				referrer = location.href;
			}
		});
	};

	// Time on page is the sum of the visible periods. Each time the page is
	// hidden, report the total so far (the server keeps the last one). `since`
	// is 0 while hidden, so pagehide after visibilitychange sends nothing new.
	const hide = () => {
		if (since) {
			visible += Date.now() - since;
			since = 0;
			if (visible > 0) {
				navigator.sendBeacon(api + "event/hit", JSON.stringify({ b: id, e: "unload", m: visible }));
			}
		}
	};

	// Also starts the clock of a new view, if the page is visible.
	const onVisibility = () => {
		if (document.hidden) hide();
		else if (!since) since = Date.now();
	};

	// history.pushState/replaceState, back/forward and hash changes all land
	// here; only a change of route (the path, plus the hash in hash mode) is a
	// new view. Until the first ping answers, its callback sends the load.
	const navigate = () => {
		if (route != currentRoute()) {
			hide();
			newView();
			if (unique != null) load();
		}
	};

	const wrap = (original) =>
		function () {
			original.apply(this, arguments);
			navigate();
		};
	history.pushState = wrap(history.pushState);
	history.replaceState = wrap(history.replaceState);
	addEventListener("popstate", navigate);
	addEventListener("hashchange", navigate);
	// Capturing on window also sees visibilitychange, which fires on document.
	addEventListener("visibilitychange", onVisibility, true);
	addEventListener("pagehide", hide, true);
	// A page restored from the back/forward cache gets no load event: it is a
	// new view all the same, as it would be had the browser loaded it again.
	// pagehide already ended the old view; the visibilitychange that comes
	// before pageshow restarted its clock, so stop that (nothing more is sent
	// for it). Forcing the route makes navigate() start the new view. The
	// first pageshow of a page is not persisted and does nothing.
	addEventListener(
		"pageshow",
		(event) => {
			if (event.persisted) {
				route = since = 0;
				navigate();
			}
		},
		true,
	);

	/*@if CLICK_EVENTS|OUTBOUND_LINKS|FILE_DOWNLOADS*/
	// One delegated listener, so elements added later and clicks on children
	// count too. Left button on "click", middle button on "auxclick"; right is
	// ignored. Pairing button with type matters: old Firefox also fires "click"
	// for the middle button at document level, which would count it twice.
	const onClick = (event) => {
		const target = event.target;
		if (event.button == (event.type == "auxclick" ? 1 : 0) && target.closest) {
			/*@if CLICK_EVENTS*/
			const tag = target.closest("[data-m\\:click]");
			const props = tag && parse(tag, "data-m:click", {});
			for (const key in props) {
				custom(props);
				break;
			}
			/*@endif*/
			/*@if OUTBOUND_LINKS|FILE_DOWNLOADS*/
			// A link to a file counts as a download wherever the file is;
			// any other http(s) link to another host name is outbound. The URL
			// goes without its #fragment, cut to the server's longest property
			// value (512 characters; href is ASCII, so as many bytes).
			const link = target.closest("a[href]");
			if (link && /^http/.test(link.protocol)) {
				const url = link.href.split("#")[0].slice(0, 512);
				let file;
				/*@if FILE_DOWNLOADS*/
				if ((file = downloads.exec(link.pathname))) custom({ "file-download": url, "file-type": file[1].toLowerCase() });
				/*@endif*/
				/*@if OUTBOUND_LINKS*/
				if (!file && link.hostname != location.hostname) custom({ "outbound-link": url, "outbound-host": link.hostname });
				/*@endif*/
			}
			/*@endif*/
		}
	};
	addEventListener("click", onClick, true);
	addEventListener("auxclick", onClick, true);
	/*@endif*/

	newView();
	ping("", (first) => {
		unique = first;
		load();
	});
})();
