// flowpost console: the few things a plain form cannot do. Everything works without it but copying.
'use strict';

function announce(text) {
  for (const region of document.querySelectorAll('.copy-status')) region.textContent = text;
}

async function copyFrom(input) {
  try {
    await navigator.clipboard.writeText(input.value);
    announce('Copied.');
  } catch {
    // No clipboard access (an http page, a denied permission): leave the text selected to copy by hand.
    input.focus();
    input.select();
    announce('Select and copy the highlighted URL.');
  }
}

document.addEventListener('click', (event) => {
  const button = event.target instanceof Element ? event.target.closest('button[data-copy]') : null;
  if (!button) return;
  const input = document.getElementById(button.getAttribute('data-copy'));
  if (input) void copyFrom(input);
});
