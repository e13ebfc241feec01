// Print every solution open: a closed <details> element prints only its summary, whatever the CSS.
window.addEventListener("beforeprint", () => {
  document.querySelectorAll("details").forEach((details) => { details.open = true; });
});
