// Draws every explorable figure on the page (gradflow.explorables) with the site's own copy of
// vega-embed (_static/explorables/vega.min.js). Until a chart is drawn, and where JavaScript is
// off, the figure shows its static image; print shows that image too (book.css).
(function () {
  "use strict";

  // The spec for a screen too narrow for it: charts side by side are stacked (every hconcat
  // becomes a vconcat) and no view is wider than `width` pixels. The data is left as it is.
  function narrowed(spec, width) {
    if (Array.isArray(spec)) {
      return spec.map(function (item) { return narrowed(item, width); });
    }
    if (spec === null || typeof spec !== "object") {
      return spec;
    }
    var out = {};
    Object.keys(spec).forEach(function (key) {
      var value = spec[key];
      out[key === "hconcat" ? "vconcat" : key] =
        key === "datasets" ? value
          : key === "width" && typeof value === "number" ? Math.min(value, width)
            : narrowed(value, width);
    });
    return out;
  }

  function embed(target, spec) {
    return window.vegaEmbed(target, spec, {mode: "vega-lite", renderer: "svg", actions: false});
  }

  function draw(figure) {
    var spec = JSON.parse(figure.querySelector("script.gradflow-explorable-spec").textContent);
    var target = figure.querySelector(".gradflow-explorable-chart");
    figure.classList.add("is-live");   // shown first, so that the chart can measure its width
    return embed(target, spec).then(function (result) {
      var svg = target.querySelector("svg");
      var wide = svg && svg.getBoundingClientRect().width > target.clientWidth + 1;
      if (wide) {   // room for the axes: about 90 px beside each view
        result.finalize();
        return embed(target, narrowed(spec, Math.max(150, target.clientWidth - 90)));
      }
      return result;
    }).then(function (result) {
      figure.gradflowView = result.view;   // for the browser tests
    }).catch(function (error) {
      figure.classList.remove("is-live");   // the static image stays
      throw error;
    });
  }

  function start() {
    if (typeof window.vegaEmbed !== "function") {
      return;   // the static images stay
    }
    document.querySelectorAll(".gradflow-explorable").forEach(function (figure) {
      draw(figure).catch(function (error) {
        console.error("explorable " + figure.id + " could not be drawn: " + error);
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
