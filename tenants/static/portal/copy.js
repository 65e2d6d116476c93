// Progressive enhancement for the one-time secret page: reveal a "Copy" button for each
// element named by data-copy. Without JavaScript the text stays selectable.
(function () {
  "use strict";

  function selectText(element) {
    const range = document.createRange();
    range.selectNodeContents(element);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  async function copy(element) {
    const text = element.textContent;
    if (navigator.clipboard && window.isSecureContext) {
      try {
        await navigator.clipboard.writeText(text);
        return true;
      } catch (error) {
        // Permission refused: fall back to selecting the text.
      }
    }
    selectText(element);
    try {
      return document.execCommand("copy");
    } catch (error) {
      return false;
    }
  }

  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    const source = document.getElementById(button.dataset.copy);
    if (!source) {
      return;
    }
    const status = button.parentElement.querySelector(".copy-status");
    button.hidden = false;
    button.addEventListener("click", async function () {
      const copied = await copy(source);
      if (status) {
        status.textContent = copied ? "Copied" : "Selected: press Ctrl+C (⌘C) to copy";
        window.setTimeout(function () { status.textContent = ""; }, 4000);
      }
    });
  });
})();
