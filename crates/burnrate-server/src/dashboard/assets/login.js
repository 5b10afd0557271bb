// A token in the URL fragment (/ui#token=...) never reaches the server: this script moves
// it into the login form and submits it, and wipes it from the address bar and history.
(function () {
  var match = /(?:^|[#&])token=([^&]+)/.exec(window.location.hash);
  if (!match) { return; }
  history.replaceState(null, "", window.location.pathname + window.location.search);
  var form = document.getElementById("login");
  var field = document.getElementById("token");
  if (!form || !field) { return; }
  field.value = decodeURIComponent(match[1]);
  form.submit();
})();
