// The page's behaviour: send the form, poll the job every ~500 ms, show the clip or the reason.
// Plain JavaScript, no build step, nothing loaded from elsewhere.
"use strict";

(() => {
  const POLL_MS = 500; // NOTE: the brief's polling interval; a job takes seconds, not minutes.
  const $ = (id) => document.getElementById(id);

  const form = $("animate-form");
  const button = $("animate-button");
  const photo = $("photo");
  const preview = $("preview");
  const progressBox = $("progress-box");
  const progressText = $("progress-text");
  const progressBar = $("progress-bar");
  const notice = $("notice");
  const result = $("result");
  const video = $("clip");
  const note = $("note");
  const download = $("download");

  // A fresh random token per intended request: a double click resends the same one, so the
  // server answers with the job it already has instead of animating twice.
  let token = newToken();
  let previewUrl = null;

  function newToken() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes); // works on plain http too, unlike crypto.randomUUID
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function readJson(response) {
    try {
      return await response.json();
    } catch {
      return { error: "Sorry, something went wrong. Please try again later." };
    }
  }

  function show(element, visible) {
    element.hidden = !visible;
  }

  function showNotice(text, kind) {
    notice.textContent = text;
    notice.className = "notice " + (kind || "");
    show(notice, true);
  }

  function setProgress(message, fraction) {
    show(progressBox, true);
    progressText.textContent = message;
    progressBar.value = Math.round((fraction || 0) * 100);
  }

  function busy(on) {
    button.disabled = on;
    form.setAttribute("aria-busy", on ? "true" : "false");
  }

  function reset() {
    show(result, false);
    show(notice, false);
    show(progressBox, false);
    video.removeAttribute("src");
    video.load();
  }

  photo.addEventListener("change", () => {
    token = newToken();
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    const file = photo.files && photo.files[0];
    previewUrl = file ? URL.createObjectURL(file) : null;
    if (previewUrl) preview.src = previewUrl;
    show(preview, Boolean(previewUrl));
  });
  preview.addEventListener("error", () => show(preview, false)); // e.g. HEIC in most browsers
  form.addEventListener("input", (event) => {
    if (event.target !== photo) token = newToken();
    $("motion-value").textContent = $("motion").value;
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!photo.files || !photo.files.length) {
      showNotice("Please choose a photo to upload.", "error");
      photo.focus();
      return;
    }
    reset();
    busy(true);
    setProgress("Uploading…", 0);
    const data = new FormData(form);
    data.set("token", token);
    try {
      const response = await fetch("/api/animate", { method: "POST", body: data });
      const body = await readJson(response);
      if (response.status !== 202) {
        show(progressBox, false);
        showNotice(body.error || "Sorry, something went wrong.", "error");
        busy(false);
        return;
      }
      poll(body.job_id);
    } catch {
      show(progressBox, false);
      showNotice("The upload did not reach the server. Please check your connection.", "error");
      busy(false);
    }
  });

  async function poll(jobId) {
    let status;
    try {
      const response = await fetch("/api/jobs/" + encodeURIComponent(jobId), {
        cache: "no-store",
      });
      status = await readJson(response);
      if (!response.ok) throw new Error(status.error);
    } catch (error) {
      setTimeout(() => poll(jobId), POLL_MS * 4); // a blip: keep trying, a little slower
      return;
    }
    if (status.state === "queued" || status.state === "running") {
      setProgress(status.message, status.fraction);
      setTimeout(() => poll(jobId), POLL_MS);
      return;
    }
    finish(status);
  }

  function finish(status) {
    show(progressBox, false);
    busy(false);
    token = newToken();
    if (status.error) {
      showNotice(status.error, "error");
    } else if (status.result && status.result.status === "ok") {
      showClip(status.result);
    } else if (status.result) {
      showNotice(status.result.message, "rejected");
    }
  }

  function showClip(res) {
    video.src = res.clip_url;
    note.textContent = res.note;
    download.href = res.clip_url;
    download.setAttribute("download", "alive-" + res.ledger_id + ".mp4");
    show(result, true);
    video.play().catch(() => {}); // autoplay may be refused; the controls are there
    result.scrollIntoView({ behavior: "smooth", block: "nearest" });
  }

  $("again").addEventListener("click", () => {
    reset();
    form.reset();
    $("motion-value").textContent = $("motion").value;
    show(preview, false);
    token = newToken();
    photo.focus();
  });

  // Verify a file.
  const verifyForm = $("verify-form");
  const verifyLines = $("verify-lines");
  const verifyButton = $("verify-button");

  function showLines(lines, kind) {
    verifyLines.replaceChildren(
      ...lines.map((text) => {
        const item = document.createElement("li");
        item.textContent = text; // never innerHTML: lines can carry names from a manifest
        if (text.startsWith("  · ")) item.className = "detail";
        return item;
      }),
    );
    verifyLines.className = "lines " + (kind || "");
  }

  verifyForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = $("verify-file");
    if (!input.files || !input.files.length) {
      showLines(["Please choose a file to check."], "error");
      return;
    }
    verifyButton.disabled = true;
    showLines(["Checking…"]);
    try {
      const response = await fetch("/api/verify", {
        method: "POST",
        body: new FormData(verifyForm),
      });
      const body = await readJson(response);
      if (!response.ok) {
        showLines([body.error || "Sorry, something went wrong."], "error");
      } else {
        const kind = body.report.revoked ? "revoked" : body.report.ours ? "ours" : "";
        showLines(body.lines, kind);
      }
    } catch {
      showLines(["The file did not reach the server. Please check your connection."], "error");
    } finally {
      verifyButton.disabled = false;
    }
  });
})();
