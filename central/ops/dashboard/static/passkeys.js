// Staff passkeys (WebAuthn): sign in with a passkey (#passkey-signin-form),
// confirm a remote command (#command-passkey-form)
// and register one under "My account" (#passkey-add-form). The server's
// options (py_webauthn's JSON) carry binary fields as base64url; the answer
// goes back as JSON in a hidden field of an ordinary form post.
(function () {
  "use strict";

  function toBytes(text) {
    const b64 = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
    return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  }

  function toText(buffer) {
    let binary = "";
    for (const byte of new Uint8Array(buffer)) binary += String.fromCharCode(byte);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function withIds(list) {
    return (list || []).map((c) => Object.assign({}, c, { id: toBytes(c.id) }));
  }

  function say(form, text) {
    const status = form.querySelector(".passkey-status");
    status.hidden = false;
    status.textContent = text;
  }

  function failure(form, error) {
    // NotAllowedError: cancelled, timed out, or no passkey of this site here.
    say(form, error && error.name === "NotAllowedError" ? form.dataset.tCancelled
      : form.dataset.tFailed + " (" + (error && error.name ? error.name : error) + ")");
  }

  function answer(credential) {
    const r = credential.response, out = {
      id: credential.id, rawId: toText(credential.rawId), type: credential.type,
      clientExtensionResults: credential.getClientExtensionResults(),
      authenticatorAttachment: credential.authenticatorAttachment || undefined,
      response: { clientDataJSON: toText(r.clientDataJSON) },
    };
    if (r.attestationObject) {
      out.response.attestationObject = toText(r.attestationObject);
      out.response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      out.response.authenticatorData = toText(r.authenticatorData);
      out.response.signature = toText(r.signature);
      if (r.userHandle) out.response.userHandle = toText(r.userHandle);
    }
    return JSON.stringify(out);
  }

  async function signIn(form) {
    const options = JSON.parse(form.dataset.options);
    options.challenge = toBytes(options.challenge);
    options.allowCredentials = withIds(options.allowCredentials);
    say(form, form.dataset.tWaiting);
    try {
      const credential = await navigator.credentials.get({ publicKey: options });
      form.elements.credential.value = answer(credential);
      form.submit();
    } catch (error) {
      failure(form, error);
    }
  }

  async function register(form) {
    say(form, form.dataset.tWaiting);
    try {
      const body = new URLSearchParams({ csrf: form.elements.csrf.value });
      const reply = await fetch("/account/passkeys/options", { method: "POST", body: body });
      if (!reply.ok) throw new Error(reply.status);
      const got = await reply.json(), options = got.options;
      options.challenge = toBytes(options.challenge);
      options.user.id = toBytes(options.user.id);
      options.excludeCredentials = withIds(options.excludeCredentials);
      const credential = await navigator.credentials.create({ publicKey: options });
      form.elements.credential.value = answer(credential);
      form.elements.token.value = got.token;
      form.submit();
    } catch (error) {
      failure(form, error);
    }
  }

  function wire(id, action) {
    const form = document.getElementById(id);
    if (!form) return;
    if (!window.PublicKeyCredential) {
      say(form, form.dataset.tUnsupported);
      return;
    }
    form.addEventListener("submit", (event) => {
      if (!form.elements.credential.value) {
        event.preventDefault();
        action(form);
      }
    });
  }

  wire("passkey-signin-form", signIn);
  // A remote unlock or lockdown: a fresh assertion on the confirmation page.
  wire("command-passkey-form", signIn);
  wire("passkey-add-form", register);
})();
