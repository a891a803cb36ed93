// kolo_django admin: the "Copy" button of a generated test.
"use strict";
document.addEventListener("click", function (event) {
  const button = event.target.closest("[data-kolo-copy]");
  if (!button) return;
  const text = document.getElementById(button.dataset.koloCopy).textContent;
  const label = button.textContent;
  const done = function () {
    button.textContent = "Copied";
    setTimeout(function () { button.textContent = label; }, 1500);
  };
  // The Clipboard API needs a secure context; plain http falls back to a selection.
  const fallback = function () {
    const area = document.createElement("textarea");
    area.value = text;
    document.body.appendChild(area);
    area.select();
    document.execCommand("copy");
    area.remove();
    done();
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, fallback);
  } else {
    fallback();
  }
});
