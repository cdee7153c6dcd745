// OAuth 2.0 Form Post Response Mode: send the answer to the tool at once (the button is the fallback).
document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("form-post");
  if (form) { form.submit(); }
});
