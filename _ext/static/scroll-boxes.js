// Boxes that scroll sideways on a narrow screen (code, equations, tables) become reachable from the
// keyboard and named for screen readers, but only while they do overflow: a box that fits stays
// out of the tab order. Runs after MathJax has typeset, and again when the window is resized.
(() => {
  "use strict";
  const BOXES = [
    [".bd-article div.highlight pre", "Code"],
    [".bd-article div.math", "Equation"],
    ['.bd-article mjx-container[display="true"]', "Equation"], // MathJax scrolls its own box
    [".bd-article .book-table", null], // named when the book was built, by its caption
    [".bd-article .cell_output > .output", "Cell output"],
  ];

  function mark() {
    for (const [selector, name] of BOXES) {
      let count = 0;
      for (const box of document.querySelectorAll(selector)) {
        count += 1;
        const overflows = box.scrollWidth > box.clientWidth + 1;
        if (overflows) {
          box.tabIndex = 0;
          if (!box.getAttribute("role")) box.setAttribute("role", "region");
          if (name && !box.getAttribute("aria-label")) box.setAttribute("aria-label", `${name} ${count}, scrolls sideways`);
        } else if (box.getAttribute("role") === "region" && box.getAttribute("aria-label")?.endsWith("scrolls sideways")) {
          box.removeAttribute("role");
          box.removeAttribute("aria-label");
          box.tabIndex = -1;
        }
      }
    }
  }

  let timer = null;
  const later = () => { clearTimeout(timer); timer = setTimeout(mark, 200); };
  window.addEventListener("load", () => {
    const typeset = window.MathJax && window.MathJax.startup && window.MathJax.startup.promise;
    (typeset || Promise.resolve()).then(mark);
  });
  window.addEventListener("resize", later);
})();
