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

  // Files over the limit are refused by the server anyway; saying so as soon as they are
  // chosen spares the sender the wait. The warning is tied to the field like a server error.
  var SIZE_MESSAGE_ID = "attachments-too-large";

  function describedBy(input, add) {
    var ids = (input.getAttribute("aria-describedby") || "").split(" ").filter(function (id) {
      return id && id !== SIZE_MESSAGE_ID;
    });
    if (add) { ids.push(SIZE_MESSAGE_ID); }
    input.setAttribute("aria-describedby", ids.join(" "));
  }

  function filesTooLarge(input) {
    var total = 0;
    for (var i = 0; i < input.files.length; i++) { total += input.files[i].size; }
    var tooLarge = total > Number(input.getAttribute("data-max-bytes"));
    var message = document.getElementById(SIZE_MESSAGE_ID);
    if (message) { message.textContent = tooLarge ? message.getAttribute("data-message") : ""; }
    var field = input.closest(".field");
    if (field) { field.classList.toggle("field--size-error", tooLarge); }
    if (!input.hasAttribute("data-invalid-before")) {
      input.setAttribute("data-invalid-before", input.getAttribute("aria-invalid") || "");
    }
    var before = input.getAttribute("data-invalid-before");
    if (tooLarge) {
      input.setAttribute("aria-invalid", "true");
    } else if (before) {
      input.setAttribute("aria-invalid", before);
    } else {
      input.removeAttribute("aria-invalid");
    }
    describedBy(input, tooLarge);
    return tooLarge;
  }

  function sizeInput(target) {
    return target && target.querySelector ? target.querySelector("input[type=file][data-max-bytes]") : null;
  }

  function checkOnChange(event) {
    var input = event.target;
    if (input && input.matches && input.matches("input[type=file][data-max-bytes]")) { filesTooLarge(input); }
  }

  function checkFileSizes(event) {
    var input = sizeInput(event.target);
    if (input && input.files && filesTooLarge(input)) {
      event.preventDefault();
      event.stopImmediatePropagation();
      input.focus();
    }
  }

  document.addEventListener("change", checkOnChange);
  document.addEventListener("submit", checkFileSizes, true);
  document.addEventListener("htmx:afterSwap", focusAfterSwap);
  document.addEventListener("htmx:xhr:progress", showProgress);
})();
