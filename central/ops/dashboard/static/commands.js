// The live command list (#command-list) of the device and facility pages:
// the server-sent stream of the section's data-stream address replaces the
// rows whenever a command's state changes (sent, delivered, done, ...).
(function () {
  "use strict";
  const section = document.getElementById("commands");
  const table = document.getElementById("command-list");
  if (!section || !table || !window.EventSource) return;
  const states = JSON.parse(table.dataset.tStates || "{}");

  function cell(text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  function row(c) {
    const tr = document.createElement("tr");
    tr.dataset.id = c.id;
    const link = document.createElement("a");
    link.href = "/commands/" + encodeURIComponent(c.id);
    link.textContent = c.name;
    const name = cell("");
    name.appendChild(link);
    tr.append(cell(c.issued_at), cell(c.device), name, cell(c.door), cell(c.issued_by),
      cell(states[c.state] || c.state, "command-state state-" + c.state),
      cell((c.code + " " + c.message).trim(), "command-message"));
    return tr;
  }

  const source = new EventSource(section.dataset.stream);
  source.addEventListener("commands", (e) => {
    const body = table.tBodies[0];
    const commands = JSON.parse(e.data).commands;
    if (!commands.length) return;
    body.replaceChildren(...commands.map(row));
  });
})();
