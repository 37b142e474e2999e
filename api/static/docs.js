/* Starts Swagger UI on /api/docs (the OpenAPI document's URL is the page's data-openapi-url),
   with a plugin of Swagger UI's own kind (wrapComponents) for two accessibility faults of its
   markup: an operation's path is a deep link inside the button that opens the operation (a link in
   a button, axe-core's nested-interactive), so it is rendered as text there (deep linking itself,
   the URL following the open operation, stays on); and the examples' <select> has no label, so it
   is wrapped in one with its "Examples:" caption. A heading "Operations" (h2, for screen readers)
   also goes between the title (h1) and the tags (h3), so no heading level is skipped. */
(function () {
  "use strict";

  function AccessibleMarkup(system) {
    var h = system.React.createElement;
    return {
      wrapComponents: {
        OperationSummaryPath: function (Original) {
          return function (props) {
            var operationProps = props.operationProps.set("isDeepLinkingEnabled", false);
            return h(Original, Object.assign({}, props, { operationProps: operationProps }));
          };
        },
        operations: function (Original) {
          return function (props) {
            return h(
              system.React.Fragment,
              null,
              h("h2", { className: "tp-operations-heading" }, "Operations"),
              h(Original, props),
            );
          };
        },
        ExamplesSelect: function (Original) {
          return function (props) {
            return h("label", { className: "examples-select-label" }, h(Original, props));
          };
        },
      },
    };
  }

  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    domNode: root,
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
    plugins: [AccessibleMarkup],
  });
})();
