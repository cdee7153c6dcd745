// Passkeys (WebAuthn) for Portail's forms marked data-webauthn="register|login|second|reauth".
// On submit: fetch the ceremony's options from POST /webauthn/options (CSRF-checked form), ask the
// authenticator (navigator.credentials), put its answer (JSON) in the form's "credential" field and
// submit the form as usual: the server answers with an ordinary page. No external script.
(function () {
  "use strict";
  if (!window.PublicKeyCredential || !navigator.credentials) {
    document.querySelectorAll("form[data-webauthn]").forEach(function (form) { form.hidden = true; });
    return;
  }
  function toBytes(value) {
    var base64 = value.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) { base64 += "="; }
    var text = atob(base64);
    var bytes = new Uint8Array(text.length);
    for (var i = 0; i < text.length; i++) { bytes[i] = text.charCodeAt(i); }
    return bytes.buffer;
  }
  function toText(buffer) {
    if (!buffer) { return null; }
    var bytes = new Uint8Array(buffer);
    var text = "";
    for (var i = 0; i < bytes.length; i++) { text += String.fromCharCode(bytes[i]); }
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function descriptors(list) {
    return (list || []).map(function (item) { return Object.assign({}, item, { id: toBytes(item.id) }); });
  }
  function creationOptions(options) {
    options.challenge = toBytes(options.challenge);
    options.user.id = toBytes(options.user.id);
    options.excludeCredentials = descriptors(options.excludeCredentials);
    return { publicKey: options };
  }
  function requestOptions(options) {
    options.challenge = toBytes(options.challenge);
    options.allowCredentials = descriptors(options.allowCredentials);
    return { publicKey: options };
  }
  function serialize(credential) {
    var response = credential.response;
    var body = {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      clientExtensionResults: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {},
      authenticatorAttachment: credential.authenticatorAttachment || null,
      response: { clientDataJSON: toText(response.clientDataJSON) }
    };
    if (response.attestationObject) {
      body.response.attestationObject = toText(response.attestationObject);
      body.response.transports = response.getTransports ? response.getTransports() : [];
    } else {
      body.response.authenticatorData = toText(response.authenticatorData);
      body.response.signature = toText(response.signature);
      body.response.userHandle = toText(response.userHandle);
    }
    return JSON.stringify(body);
  }
  function fail(form, message) {
    var box = form.querySelector(".webauthn-error");
    if (!box) {
      box = document.createElement("p");
      box.className = "error webauthn-error";
      box.setAttribute("role", "alert");
      form.appendChild(box);
    }
    box.textContent = message;
  }
  document.querySelectorAll("form[data-webauthn]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      var field = form.querySelector("input[name=credential]");
      if (field.value) { return; }
      event.preventDefault();
      var purpose = form.getAttribute("data-webauthn");
      var body = new URLSearchParams();
      body.set("csrf_token", form.querySelector("input[name=csrf_token]").value);
      body.set("purpose", purpose);
      fetch("/webauthn/options", { method: "POST", body: body, credentials: "same-origin" })
        .then(function (answer) {
          return answer.json().then(function (data) {
            if (!answer.ok) { throw new Error(data.error_description || data.error); }
            return data;
          });
        })
        .then(function (options) {
          return purpose === "register"
            ? navigator.credentials.create(creationOptions(options))
            : navigator.credentials.get(requestOptions(options));
        })
        .then(function (credential) {
          field.value = serialize(credential);
          form.submit();
        })
        .catch(function (error) {
          fail(form, error && error.message ? error.message : String(error));
        });
    });
  });
})();
