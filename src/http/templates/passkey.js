// Portcullis passkey page (W3C WebAuthn): reads the options the server put in
// #passkey-options, calls navigator.credentials.create/get when the button is pressed, and
// posts the credential (binary fields base64url) with the page's form. No dependencies.
(function () {
  "use strict";
  function enc(buffer) {
    var bytes = new Uint8Array(buffer), s = "";
    for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function dec(text) {
    var s = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4));
    var bytes = new Uint8Array(s.length);
    for (var i = 0; i < s.length; i++) bytes[i] = s.charCodeAt(i);
    return bytes.buffer;
  }
  function ids(list) {
    return (list || []).map(function (c) {
      return { type: c.type, id: dec(c.id), transports: c.transports };
    });
  }
  var form = document.getElementById("passkey-finish");
  var button = document.getElementById("passkey-start");
  var status = document.getElementById("passkey-status");
  if (!form || !button) return;
  if (!window.PublicKeyCredential) {
    status.textContent = "This browser does not support passkeys. Go back to sign in another way.";
    status.hidden = false;
    return;
  }
  button.hidden = false;
  button.addEventListener("click", function () {
    var options = JSON.parse(document.getElementById("passkey-options").getAttribute("data-options"));
    var pk = options.publicKey, call;
    pk.challenge = dec(pk.challenge);
    if (options.mode === "create") {
      pk.user.id = dec(pk.user.id);
      pk.excludeCredentials = ids(pk.excludeCredentials);
      call = navigator.credentials.create({ publicKey: pk });
    } else {
      pk.allowCredentials = ids(pk.allowCredentials);
      call = navigator.credentials.get({ publicKey: pk });
    }
    button.disabled = true;
    status.hidden = true;
    call.then(function (credential) {
      var r = credential.response;
      var out = { id: credential.id, rawId: enc(credential.rawId), type: credential.type,
                  response: { clientDataJSON: enc(r.clientDataJSON) } };
      if (r.attestationObject) {
        out.response.attestationObject = enc(r.attestationObject);
        if (r.getTransports) out.response.transports = r.getTransports();
      } else {
        out.response.authenticatorData = enc(r.authenticatorData);
        out.response.signature = enc(r.signature);
        if (r.userHandle) out.response.userHandle = enc(r.userHandle);
      }
      form.elements.credential.value = JSON.stringify(out);
      form.submit();
    }, function (error) {
      status.textContent = "The passkey was not used (" + error.name + "). Try again, or go back to sign in another way.";
      status.hidden = false;
      button.disabled = false;
    });
  });
})();
