/* nurture.js: page views and forms of the company's site, for lead scoring.
 *
 * Add to every page:
 *   <script src="https://nurture.example.com/t/nurture.js" data-site="https://www.example.com" async></script>
 *
 * - A first-party cookie (on the site's own domain) holds a random browser id:
 *   nothing about the person. No third-party cookie.
 * - A visit arriving through a tracked email link carries `nurture_ref` in the
 *   URL: it is sent once (the browser becomes that contact's) and removed from
 *   the address bar.
 * - A form with an email field identifies the browser when it is sent.
 * - Do Not Track and Global Privacy Control are honoured: nothing is sent, no cookie.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || navigator.doNotTrack === "1" || window.doNotTrack === "1" ||
      navigator.globalPrivacyControl === true) {
    return;
  }
  var endpoint = new URL("/t/s", script.src).href;
  var site = script.getAttribute("data-site") || location.origin;
  var COOKIE = "nurture_id";
  var PARAM = "nurture_ref";

  function browserId() {
    var found = document.cookie.match(/(?:^|;\s*)nurture_id=([A-Za-z0-9_-]{16,64})/);
    var id = found ? found[1] : null;
    if (!id) {
      var bytes = new Uint8Array(16);
      crypto.getRandomValues(bytes);
      id = Array.prototype.map.call(bytes, function (b) {
        return ("0" + b.toString(16)).slice(-2);
      }).join("");
    }
    // Renewed on every page: 13 months, the site's own domain only.
    document.cookie = COOKIE + "=" + id + "; Max-Age=" + 34128000 + "; Path=/; SameSite=Lax" +
      (location.protocol === "https:" ? "; Secure" : "");
    return id;
  }

  function send(body) {
    var data = JSON.stringify(body);
    // text/plain: a simple request, no preflight; the server checks the Origin.
    if (navigator.sendBeacon && navigator.sendBeacon(endpoint, new Blob([data], {type: "text/plain"}))) {
      return;
    }
    fetch(endpoint, {method: "POST", body: data, keepalive: true, mode: "cors",
                     credentials: "omit", headers: {"Content-Type": "text/plain"}});
  }

  var id = browserId();
  var url = new URL(location.href);
  var ref = url.searchParams.get(PARAM);
  if (ref) {
    url.searchParams.delete(PARAM);
    history.replaceState(history.state, "", url.pathname + url.search + url.hash);
  }
  send({v: id, site: site, url: url.href, title: document.title.slice(0, 300),
        referrer: document.referrer.slice(0, 2000), ref: ref || undefined});

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form || !form.querySelector) { return; }
    var field = form.querySelector("input[type=email], input[name=email]");
    if (!field || !field.value) { return; }
    var consent = form.querySelector("[data-nurture-consent]");
    send({v: id, site: site, url: location.href, form: {
      email: field.value,
      form_id: form.id || form.getAttribute("name") || undefined,
      consent: consent ? (consent.checked ? "granted" : undefined) : undefined,
      consent_text: consent && consent.checked ?
        (consent.getAttribute("data-nurture-consent") || undefined) : undefined
    }});
  }, true);
})();
