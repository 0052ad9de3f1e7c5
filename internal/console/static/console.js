// Copy buttons: <button data-copy="text">. No inline script anywhere
// (the Content-Security-Policy forbids it).
(function () {
  function done(b) {
    b.textContent = "Copied";
    setTimeout(function () { b.textContent = "Copy"; }, 1500);
  }
  // execCommand works where the clipboard API is refused (plain HTTP on
  // a non-loopback name, or no permission).
  function fallback(b, text) {
    var t = document.createElement("textarea");
    t.value = text;
    t.setAttribute("readonly", "");
    t.style.position = "fixed";
    t.style.opacity = "0";
    document.body.appendChild(t);
    t.select();
    try { if (document.execCommand("copy")) done(b); } catch (e) {}
    t.remove();
  }
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest("button[data-copy]");
    if (!b) return;
    ev.preventDefault();
    var text = b.getAttribute("data-copy");
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { done(b); }, function () { fallback(b, text); });
    } else {
      fallback(b, text);
    }
  });
})();
