// Swagger UI's OAuth2 redirect handler (after swagger-ui's oauth2-redirect.html, Apache-2.0), served as a file so
// the page needs no inline script under its Content-Security-Policy. It hands the authorization response (code in
// the query, or token in the fragment for the implicit flow) back to the Swagger UI window that opened it.
"use strict";
(function () {
  function run() {
    var oauth2 = window.opener && window.opener.swaggerUIRedirectOauth2;
    if (!oauth2) {
      document.getElementById("status").textContent =
        "This page must be opened by the API docs' Authorize dialog.";
      return;
    }
    var fromFragment = /code|token|error/.test(window.location.hash);
    var raw = fromFragment ? window.location.hash.substring(1) : window.location.search.substring(1);
    var params = new URLSearchParams(raw);
    var qp = {};
    params.forEach(function (value, key) { qp[key] = value; });
    var isValid = qp.state === oauth2.state;
    var flow = oauth2.auth.schema.get("flow");
    var codeFlow = flow === "accessCode" || flow === "authorizationCode" || flow === "authorization_code";
    if (codeFlow && !oauth2.auth.code) {
      if (!isValid) {
        oauth2.errCb({
          authId: oauth2.auth.name, source: "auth", level: "warning",
          message: "Authorization may be unsafe: the state sent was not the state returned."
        });
      }
      if (qp.code) {
        delete oauth2.state;
        oauth2.auth.code = qp.code;
        oauth2.callback({ auth: oauth2.auth, redirectUrl: oauth2.redirectUrl });
      } else {
        var message = "[Authorization failed]: no authorization code received from the server.";
        if (qp.error) {
          message = "[" + qp.error + "]: " + (qp.error_description || "no authorization code received.");
        }
        oauth2.errCb({ authId: oauth2.auth.name, source: "auth", level: "error", message: message });
      }
    } else {
      oauth2.callback({ auth: oauth2.auth, token: qp, isValid: isValid, redirectUrl: oauth2.redirectUrl });
    }
    window.close();
  }
  if (document.readyState !== "loading") {
    run();
  } else {
    document.addEventListener("DOMContentLoaded", run);
  }
})();
