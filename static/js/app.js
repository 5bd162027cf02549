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
