// Starts Swagger UI from the JSON configuration embedded in the page (a data block, not a script), so the
// page runs no inline script and works under a strict Content-Security-Policy.
"use strict";
(function () {
  var config = JSON.parse(document.getElementById("docs-config").textContent);
  var ui = SwaggerUIBundle({
    url: config.openapiUrl,
    dom_id: "#swagger-ui",
    oauth2RedirectUrl: config.oauth2RedirectUrl,
    deepLinking: true,
    persistAuthorization: false,
    displayRequestDuration: true,
    showExtensions: true,
    layout: "BaseLayout",
    presets: [SwaggerUIBundle.presets.apis],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl]
  });
  ui.initOAuth(config.initOAuth);
  window.ui = ui;
})();
