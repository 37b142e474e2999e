/* Starts Swagger UI on /api/docs (the OpenAPI document's URL is the page's data-openapi-url),
   with a plugin of Swagger UI's own kind (wrapComponents) for two accessibility faults of its
   markup: an operation's path is a deep link inside the button that opens the operation (a link in
   a button, axe-core's nested-interactive), so it is rendered as text there (deep linking itself,
   the URL following the open operation, stays on); and the examples' <select> has no label, so it
   is wrapped in one with its "Examples:" caption. Headings "Authorization" and "Operations" (h2, for
   screen readers) go between the title (h1) and the Authorize dialog's and the tags' (h3), so no
   heading level is skipped; the request
   body's <textarea> (Try it out) is named "Request body"; and the close icon, the only content of
   the Authorize dialog's close button, is named "Close". */
(function () {
  "use strict";

  function AccessibleMarkup(system) {
    var h = system.React.createElement;

    function headed(title) {
      return function (Original) {
        return function (props) {
          var heading = h("h2", { className: "tp-heading" }, title);
          return h(system.React.Fragment, null, heading, h(Original, props));
        };
      };
    }

    return {
      wrapComponents: {
        OperationSummaryPath: function (Original) {
          return function (props) {
            var operationProps = props.operationProps.set("isDeepLinkingEnabled", false);
            return h(Original, Object.assign({}, props, { operationProps: operationProps }));
          };
        },
        AuthorizeBtnContainer: headed("Authorization"),
        operations: headed("Operations"),
        TextArea: function (Original) {
          return function (props) {
            var body = String(props.className || "").indexOf("body-param__text") !== -1;
            var named = body && !props["aria-label"] ? { "aria-label": "Request body" } : {};
            return h(Original, Object.assign({}, props, named));
          };
        },
        CloseIcon: function (Original) {
          return function (props) {
            var named = { role: "img", "aria-hidden": "false", "aria-label": "Close" };
            return h(Original, Object.assign({}, props, named));
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
