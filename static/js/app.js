// Content-Security-Policy (no inline style or code): htmx must not add its own indicator <style> (app.css
// styles .htmx-indicator) nor evaluate code from attributes. This deferred script runs after htmx's and
// before DOMContentLoaded, when htmx applies its configuration.
if (window.htmx) {
  window.htmx.config.includeIndicatorStyles = false;
  window.htmx.config.allowEval = false;
  // Settling copies an old element's attributes onto its replacement; a "style" attribute (which the browser or a
  // tool may leave on an element, e.g. style="") would be an inline style the policy blocks. We never use one.
  window.htmx.config.attributesToSettle = ["class", "width", "height"];
}

// Show/hide toggles for secret inputs; works for content swapped in by htmx too.
document.addEventListener("click", function (event) {
  const button = event.target.closest("[data-toggle-secret]");
  if (!button) return;
  const input = document.getElementById(button.getAttribute("data-toggle-secret"));
  if (!input) return;
  const show = input.type === "password";
  input.type = show ? "text" : "password";
  button.textContent = show ? "Hide" : "Show";
  button.setAttribute("aria-pressed", show ? "true" : "false");
});

// "Fill demo values" (demo mode only): copies the bundled fakes' credentials into the connect form.
document.addEventListener("click", function (event) {
  const button = event.target.closest("[data-fill-demo]");
  if (!button) return;
  const source = document.getElementById(button.getAttribute("data-fill-demo"));
  const container = document.getElementById(button.getAttribute("data-fill-target") || "");
  const form = container ? container.querySelector("form") : button.closest("form");
  if (!source || !form) return;
  const values = JSON.parse(source.textContent);
  Object.keys(values).forEach(function (name) {
    const input = form.elements.namedItem(name);
    if (input && input.type === "checkbox") input.checked = Boolean(values[name]);
    else if (input && "value" in input) input.value = values[name];
  });
});

// Forms that ask before they submit (data-confirm="question"); inline handlers are not allowed by the CSP.
document.addEventListener("submit", function (event) {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
});

// Customer file inputs carry the upload limit (data-max-bytes): a file over it is refused here, before a byte is
// sent (the server stops such an upload at the limit anyway, audiences/uploads.py).
document.addEventListener("change", function (event) {
  const input = event.target;
  if (!input.matches || !input.matches("input[type=file][data-max-bytes]")) return;
  const limit = Number(input.getAttribute("data-max-bytes"));
  const file = input.files && input.files[0];
  const tooLarge = Boolean(file && limit && file.size > limit);
  input.setCustomValidity(tooLarge ? input.getAttribute("data-too-large") : "");
  const field = input.closest(".field");
  let note = field && field.querySelector(".size-error");
  if (tooLarge && field && !note) {
    note = document.createElement("p");
    note.className = "errorlist size-error";
    note.setAttribute("role", "alert");
    field.appendChild(note);
  }
  if (note) note.textContent = tooLarge ? input.getAttribute("data-too-large") : "";
  if (field) field.classList.toggle("has-error", tooLarge);
});
document.addEventListener("submit", function (event) {
  const input = event.target.querySelector && event.target.querySelector("input[type=file][data-max-bytes]");
  if (input && input.validationMessage && !event.submitter?.hasAttribute("formnovalidate")) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
}, true);

// Sync forms show only what the chosen schedule uses: an element with data-schedule-for="hourly daily" is shown
// for those schedules (hourly: its minute; daily: time and zone; weekly: and the weekday). The hidden fields are
// still sent; the server validates every field either way. The server renders the stored schedule's state; this
// keeps it in step with the select (a change, or a value the browser restored on Back).
function showScheduleFields(select) {
  if (!select.form) return;
  select.form.querySelectorAll("[data-schedule-for]").forEach(function (element) {
    element.hidden = !element.getAttribute("data-schedule-for").split(" ").includes(select.value);
  });
}
document.addEventListener("change", function (event) {
  if (event.target.matches && event.target.matches("select[data-schedule]")) showScheduleFields(event.target);
});
function showAllScheduleFields(root) {
  if (root.querySelectorAll) root.querySelectorAll("select[data-schedule]").forEach(showScheduleFields);
}
document.addEventListener("DOMContentLoaded", function () { showAllScheduleFields(document); });
document.addEventListener("htmx:load", function (event) { showAllScheduleFields(event.target); });
