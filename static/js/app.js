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
