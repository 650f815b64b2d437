/* Sinetti's own small script. Every page works without it; it only improves htmx swaps:
   - after a swap, focus moves to the error summary (or the page heading) so keyboard and
     screen-reader users land where the change is;
   - while the compose form uploads, a progress bar shows how much has been sent. */
(function () {
  "use strict";

  function focusAfterSwap(event) {
    var target = event.detail && event.detail.target;
    if (!target || target.id !== "main") { return; }
    var summary = document.getElementById("error-summary");
    var focusable = summary || target.querySelector("h1") || target;
    if (!focusable.hasAttribute("tabindex")) { focusable.setAttribute("tabindex", "-1"); }
    focusable.focus();
  }

  function progressBox(form) {
    return form && form.hasAttribute("data-upload-progress") ? form.querySelector(".upload-progress") : null;
  }

  function showProgress(event) {
    var form = event.target && event.target.closest ? event.target.closest("form") : null;
    var box = progressBox(form);
    if (!box || !event.detail.total) { return; }
    var percent = Math.floor((event.detail.loaded / event.detail.total) * 100);
    box.hidden = false;
    box.querySelector("progress").value = percent;
    var text = box.querySelector("[data-progress-text]");
    var rounded = Math.floor(percent / 10) * 10;
    if (text.getAttribute("data-last") !== String(rounded)) {
      text.setAttribute("data-last", String(rounded));
      text.textContent = text.getAttribute("data-template").replace("{percent}", String(percent));
    }
  }

  // Files over the limit are refused by the server anyway; saying so before the upload
  // starts spares the sender the wait.
  function checkFileSizes(event) {
    var form = event.target;
    var input = form.querySelector && form.querySelector("input[type=file][data-max-bytes]");
    if (!input || !input.files) { return; }
    var total = 0;
    for (var i = 0; i < input.files.length; i++) { total += input.files[i].size; }
    var message = document.getElementById("attachments-too-large");
    var tooLarge = total > Number(input.getAttribute("data-max-bytes"));
    if (message) { message.hidden = !tooLarge; }
    if (tooLarge) {
      event.preventDefault();
      event.stopImmediatePropagation();
      input.focus();
    }
  }

  document.addEventListener("submit", checkFileSizes, true);
  document.addEventListener("htmx:afterSwap", focusAfterSwap);
  document.addEventListener("htmx:xhr:progress", showProgress);
})();
