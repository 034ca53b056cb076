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

// Dialog page: the transcript follows the dialog live (server-sent events). New lines are appended,
// the status badge and step follow the dialog; a move into or out of `manual` reloads the page,
// which then shows (or drops) the reply box and the matching operator action.
function formatTime(iso) {
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;
}

function appendLine(list, line) {
  if (list.querySelector(`[data-line-id="${CSS.escape(line.id)}"]`)) return;
  const item = document.createElement('li');
  item.className = `line from-${line.sender}`;
  item.dataset.lineId = line.id;
  const who = document.createElement('span');
  who.className = 'who';
  who.textContent = line.who;
  const time = document.createElement('time');
  time.dateTime = line.at;
  time.textContent = formatTime(line.at);
  const text = document.createElement('p');
  text.className = 'line-text';
  text.textContent = line.text;
  item.append(who, ' ', time, text);
  // Follows the newest line unless the reader scrolled up to read older ones.
  const atEnd = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.append(item);
  if (atEnd) list.scrollTop = list.scrollHeight;
  for (const empty of document.querySelectorAll('.transcript-empty')) empty.remove();
}

function followDialog(list) {
  list.scrollTop = list.scrollHeight;
  const source = new EventSource(list.dataset.events);
  const wasManual = list.dataset.status === 'manual';
  source.addEventListener('line', (event) => appendLine(list, JSON.parse(event.data)));
  source.addEventListener('dialog', (event) => {
    const dialog = JSON.parse(event.data);
    if ((dialog.status === 'manual') !== wasManual) {
      source.close();
      window.location.reload();
      return;
    }
    const badge = document.getElementById('dialog-status');
    if (badge) {
      badge.textContent = dialog.status;
      badge.className = `badge status-${dialog.status}`;
    }
    const step = document.getElementById('dialog-step');
    if (step) step.textContent = dialog.stepKey ?? '—';
  });
}

for (const list of document.querySelectorAll('ol.transcript[data-events]')) followDialog(list);
