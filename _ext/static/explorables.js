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

  // The chart's texts as a screen reader gets them: each text mark's description (a readout's
  // description is its own text), its lines joined by spaces.
  function texts(view) {
    var found = [];
    (function walk(node) {
      (node.items || []).forEach(function (item) {
        if (item.mark && item.mark.marktype === "text" && item.description) {
          found.push(item.description.replace(/\n/g, " "));
        }
        walk(item);
      });
    })(view.scenegraph().root);
    return found;
  }

  // After a control moves, a polite live region (unseen: the chart shows the same text) says
  // the texts that changed, which are the readouts of the new setting; labels that stay put are
  // not repeated, and nothing is said when the page loads.
  function announce(figure, view) {
    var status = document.createElement("div");
    status.className = "gradflow-explorable-status";
    status.setAttribute("role", "status");
    figure.querySelector(".gradflow-explorable-chart").after(status);
    var shown = texts(view);
    function update() {
      view.runAsync().then(function () {
        var now = texts(view);
        var changed = now.filter(function (text) { return shown.indexOf(text) < 0; });
        shown = now;
        if (changed.length) {
          status.replaceChildren.apply(status, changed.map(function (text) {
            var line = document.createElement("p");
            line.textContent = text;
            return line;
          }));
        }
      });
    }
    figure.addEventListener("input", update);
    figure.addEventListener("change", update);
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
      announce(figure, result.view);
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
