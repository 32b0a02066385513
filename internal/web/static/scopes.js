// Keeps the "can read N of M streams" list of a scope form in step with
// the ticked scopes and the chosen preset. The form works without it.
(function () {
  var form = document.getElementById("scope-choices");
  var list = document.getElementById("coverage");
  if (!form || !list) return;
  var presets = { sync: null, defaults: null };
  document.querySelectorAll("[data-preset]").forEach(function (el) {
    presets[el.getAttribute("data-preset")] = el.getAttribute("data-scopes").split(" ");
  });
  function selected() {
    var chosen = document.querySelector("input[name=preset]:checked");
    var p = chosen ? chosen.value : "ticked";
    var out = presets[p] ? presets[p].slice() : [];
    if (!presets[p]) {
      form.querySelectorAll("input[name=scopes]:checked").forEach(function (c) { out.push(c.value); });
    }
    var extra = document.getElementById("extra_scopes");
    if (extra) out = out.concat(extra.value.split(/\s+/).filter(Boolean));
    return out;
  }
  function update() {
    var have = selected(), n = 0;
    list.querySelectorAll("li[data-read]").forEach(function (li) {
      var ok = have.indexOf(li.dataset.read) >= 0 || (li.dataset.all && have.indexOf(li.dataset.all) >= 0);
      li.className = ok ? "readable" : "unreadable";
      if (ok) n++;
    });
    document.getElementById("coverage-count").textContent = n;
  }
  // Choosing a preset ticks its scopes, so the boxes show what is asked.
  document.querySelectorAll("input[name=preset]").forEach(function (el) {
    el.addEventListener("change", function () {
      var list = presets[el.value];
      if (!list) return;
      form.querySelectorAll("input[name=scopes]").forEach(function (c) { c.checked = list.indexOf(c.value) >= 0; });
    });
  });
  form.querySelectorAll("input[name=scopes]").forEach(function (c) {
    c.addEventListener("change", function () {
      var ticked = document.getElementById("preset-ticked");
      if (ticked) ticked.checked = true; // a hand-ticked box means the ticked set
    });
  });
  document.querySelectorAll("input[name=scopes], input[name=preset], #extra_scopes").forEach(function (el) {
    el.addEventListener("input", update);
    el.addEventListener("change", update);
  });
  update();
})();
