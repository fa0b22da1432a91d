// Draws the API's OpenAPI description with Swagger UI, to read: calls are made with a token
// from a program, not from this page.
(function () {
  "use strict";
  const box = document.getElementById("api-reference");
  if (!box || !window.SwaggerUIBundle) return;
  window.SwaggerUIBundle({
    url: box.dataset.url,
    domNode: box,
    deepLinking: false,
    supportedSubmitMethods: [],
    defaultModelsExpandDepth: 0,
  });
})();
