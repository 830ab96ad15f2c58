// Live staff calls (server-sent events): a banner on every page, a short tone
// for each new call, and the "on the way" / "done" buttons.
(function () {
  const box = document.getElementById("staffcalls"), list = document.getElementById("staffcall-list");
  const d = box.dataset, seen = new Set();
  let audio = null;
  window.staffCallTones = 0;
  function tone() {
    window.staffCallTones += 1;
    try {
      audio = audio || new AudioContext();
      const hint = document.getElementById("staffcall-sound");
      hint.hidden = audio.state !== "suspended"; hint.textContent = d.tSound;
      for (const [start, freq] of [[0, 880], [0.25, 660], [0.5, 880]]) {
        const osc = audio.createOscillator(), gain = audio.createGain();
        osc.frequency.value = freq; gain.gain.value = 0.2;
        osc.connect(gain).connect(audio.destination);
        osc.start(audio.currentTime + start); osc.stop(audio.currentTime + start + 0.2);
      }
    } catch (e) { console.warn("no sound", e); }
  }
  document.addEventListener("click", () => { if (audio && audio.state === "suspended") audio.resume(); });
  function post(id, what) {
    const body = new FormData(); body.append("csrf", d.csrf);
    fetch(`/staffcalls/${id}/${what}`, {method: "POST", body: body, redirect: "manual", credentials: "same-origin"});
  }
  function button(id, label, what) {
    const b = document.createElement("button"); b.id = `${what === "ack" ? "onway" : "done"}-${id}`;
    b.type = "button"; b.textContent = label; b.onclick = () => { b.disabled = true; post(id, what); };
    return b;
  }
  function show(calls) {
    list.replaceChildren();
    for (const c of calls) {
      if (!seen.has(c.id) && c.state === "open") tone();
      seen.add(c.id);
      const row = document.createElement("div"); row.className = `call ${c.state}`; row.id = `call-${c.id}`;
      const text = document.createElement("span");
      const who = c.state === "acknowledged" ? ` — ${d.tAcknowledged.replace("{user}", c.acknowledged_by)}` : "";
      text.textContent = `${c.opened_at.slice(11, 19)} ${c.device} (${c.detail})${who}`;
      row.append(text);
      if (d.operator === "1") {
        if (c.state === "open") row.append(button(c.id, d.tOnway, "ack"));
        row.append(button(c.id, d.tDone, "done"));
      }
      list.append(row);
    }
    box.classList.toggle("active", calls.length > 0);
  }
  const source = new EventSource("/staffcalls/stream");
  source.addEventListener("staffcalls", (e) => show(JSON.parse(e.data).calls));
  // The browser retries by itself; a stream refused for good (the session
  // ended) reloads the page, which leads to the sign-in.
  source.onerror = () => { if (source.readyState === EventSource.CLOSED) setTimeout(() => location.reload(), 5000); };
})();
