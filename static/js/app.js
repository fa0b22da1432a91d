// Asks before a form marked data-confirm is sent (destructive or far-reaching changes).
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});

// A choice in a list (where customers go when a journey is published) says what it does in
// the sentence its select names: the chosen option carries the sentence.
document.addEventListener("change", (event) => {
  const select = event.target.closest("select[data-sentence]");
  const sentence = select && document.getElementById(select.dataset.sentence);
  if (sentence) {
    sentence.textContent = select.selectedOptions[0]?.dataset.sentence || "";
  }
});

// A consent change that was not saved says so where the change was made.
function consentNotSaved(event, message) {
  const form = event.detail.elt && event.detail.elt.closest("form.consent");
  const status = form && form.querySelector(".consent-status");
  if (status) status.textContent = `Not saved: ${message}. Reload the page and try again.`;
}
document.addEventListener("htmx:responseError", (event) => {
  consentNotSaved(event, `the server answered ${event.detail.xhr.status}`);
});
document.addEventListener("htmx:sendError", (event) => {
  consentNotSaved(event, "the server could not be reached");
});
