// Previews of the book's terms, citations, figures, equations and sections where they are cited.
// The previews come from previews-data.js (window.BOOK_PREVIEWS), written when the book is built
// by _ext/previews.py. Hover or keyboard focus shows one; Escape, leaving or blurring hides it.
// On a touch screen the first tap on a reference shows its preview and the second follows it.
(() => {
  "use strict";
  const previews = window.BOOK_PREVIEWS || {};
  const root = new URL(document.documentElement.dataset.content_root || "./", document.baseURI);
  const HOVER_DELAY_MS = 150;
  const HIDE_DELAY_MS = 250;
  let popup = null;
  let owner = null;
  let showTimer = null;
  let hideTimer = null;
  let lastPointer = "mouse";
  let ownerAtTap = null;

  function keyOf(link) {
    if (!link.closest("article") || link.classList.contains("headerlink")) return null;
    const href = link.getAttribute("href");
    if (!href || !href.includes("#")) return null;
    const url = new URL(href, document.baseURI);
    url.search = "";
    if (!url.href.startsWith(root.href)) return null;
    const key = decodeURIComponent(url.href.slice(root.href.length));
    return Object.prototype.hasOwnProperty.call(previews, key) ? key : null;
  }

  function ensurePopup() {
    if (popup) return popup;
    popup = document.createElement("div");
    popup.id = "book-preview";
    popup.className = "book-preview";
    popup.setAttribute("role", "tooltip");
    popup.hidden = true;
    popup.addEventListener("mouseenter", () => clearTimeout(hideTimer));
    popup.addEventListener("mouseleave", () => scheduleHide());
    document.body.appendChild(popup);
    return popup;
  }

  function place(link) {
    const rect = link.getBoundingClientRect();
    const width = Math.min(popup.offsetWidth, document.documentElement.clientWidth - 16);
    const left = Math.max(8, Math.min(rect.left, document.documentElement.clientWidth - width - 8));
    const below = rect.bottom + 8;
    const fitsBelow = below + popup.offsetHeight <= window.innerHeight || rect.top < popup.offsetHeight + 8;
    const top = fitsBelow ? below : rect.top - popup.offsetHeight - 8;
    popup.style.left = `${left + window.scrollX}px`;
    popup.style.top = `${top + window.scrollY}px`;
  }

  function show(link) {
    const key = keyOf(link);
    if (!key) return;
    clearTimeout(hideTimer);
    ensurePopup();
    if (owner && owner !== link) owner.removeAttribute("aria-describedby");
    owner = link;
    popup.innerHTML = previews[key];
    for (const image of popup.querySelectorAll("img")) {
      image.src = new URL(image.getAttribute("src"), root).href;
    }
    popup.hidden = false;
    place(link);
    link.setAttribute("aria-describedby", popup.id);
    if (window.MathJax && window.MathJax.typesetPromise) {
      window.MathJax.typesetPromise([popup]).then(() => owner === link && place(link));
    }
  }

  function hide() {
    clearTimeout(showTimer);
    clearTimeout(hideTimer);
    if (popup) popup.hidden = true;
    if (owner) owner.removeAttribute("aria-describedby");
    owner = null;
  }

  function scheduleHide() {
    clearTimeout(showTimer);
    clearTimeout(hideTimer);
    hideTimer = setTimeout(hide, HIDE_DELAY_MS);
  }

  const linkOf = (event) => (event.target instanceof Element ? event.target.closest("a[href]") : null);

  document.addEventListener("pointerdown", (event) => {
    lastPointer = event.pointerType || "mouse";
    ownerAtTap = owner;
    if (popup && !popup.hidden && !popup.contains(event.target) && linkOf(event) !== owner) hide();
  });
  document.addEventListener("pointerover", (event) => {
    lastPointer = event.pointerType || "mouse";
    const link = linkOf(event);
    if (!link || lastPointer === "touch" || !keyOf(link)) return;
    clearTimeout(hideTimer);
    clearTimeout(showTimer);
    showTimer = setTimeout(() => show(link), HOVER_DELAY_MS);
  });
  document.addEventListener("pointerout", (event) => {
    const link = linkOf(event);
    if (link && link === owner && !link.contains(event.relatedTarget)) scheduleHide();
    else if (link) clearTimeout(showTimer);
  });
  document.addEventListener("focusin", (event) => {
    const link = linkOf(event);
    if (link && keyOf(link)) show(link);
  });
  document.addEventListener("focusout", (event) => {
    if (linkOf(event) === owner) scheduleHide();
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && popup && !popup.hidden) hide();
  });
  document.addEventListener("click", (event) => {
    const link = linkOf(event);
    if (!link || lastPointer !== "touch" || !keyOf(link) || link === ownerAtTap) return;
    event.preventDefault(); // first tap: preview; a second tap on the same link follows it
    show(link);
  });
  window.addEventListener("resize", () => owner && place(owner));
})();
