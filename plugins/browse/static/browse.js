// A little progressive enhancement; every page works without it.
// Clicking a SHA-256 selects it whole, so it can be copied and compared with `sha256sum`.
document.addEventListener("click", (event) => {
  const sha = event.target.closest("code.sha");
  if (!sha) return;
  const range = document.createRange();
  range.selectNodeContents(sha);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
});
