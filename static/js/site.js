// The daily sign-in button posts to /checkin/ and shows the site's answer in place.
(function () {
  var button = document.getElementById("checkin");
  if (!button) return;
  var result = document.getElementById("checkin-result");
  var token = document.querySelector("input[name=csrfmiddlewaretoken]");
  button.addEventListener("click", function () {
    button.disabled = true;
    fetch(button.dataset.url, {
      method: "POST",
      headers: { "X-CSRFToken": token ? token.value : "" },
      credentials: "same-origin",
    })
      .then(function (response) { return response.json(); })
      .then(function (data) { result.textContent = data.message; })
      .catch(function () { result.textContent = "…"; })
      .finally(function () { button.disabled = false; });
  });
})();
