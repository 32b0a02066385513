// Keeps the New/Edit connection form's "scopes needed against held" list
// in step with the ticked streams, and the namespace's default with the
// name. The form works without it: the server computes the same.
(function () {
  var form = document.getElementById("connection-form");
  var box = document.getElementById("stream-choices");
  var needs = document.getElementById("scope-needs");
  if (!form || !box || !needs) return;
  var held = (form.getAttribute("data-held") || "").split(" ").filter(Boolean);
  var boxes = box.querySelectorAll("input[name=streams]");
  function has(s) { return s && held.indexOf(s) >= 0; }
  function mode() {
    var m = document.querySelector("input[name=streams_mode]:checked");
    return m ? m.value : "readable";
  }
  function update() {
    var want = {}, order = [];
    boxes.forEach(function (c) {
      var on = mode() === "readable" ? c.dataset.readable === "true" : c.checked;
      if (!on) return;
      var scope = c.dataset.read;
      if (!(scope in want)) { order.push(scope); want[scope] = false; }
      want[scope] = want[scope] || has(c.dataset.read) || has(c.dataset.all);
    });
    order.sort();
    needs.textContent = "";
    var missing = 0;
    order.forEach(function (s) {
      var li = document.createElement("li");
      li.className = want[s] ? "held" : "missing";
      li.setAttribute("data-scope", s);
      li.textContent = s;
      needs.appendChild(li);
      if (!want[s]) missing++;
    });
    var sum = document.getElementById("scope-summary");
    sum.textContent = order.length + " needed, ";
    if (missing) {
      var b = document.createElement("strong");
      b.className = "missing";
      b.textContent = missing + " missing";
      sum.appendChild(b);
    } else {
      sum.appendChild(document.createTextNode("all held"));
    }
    document.getElementById("missing-help").hidden = missing === 0;
  }
  // Choosing "every readable stream" ticks them; ticking a box means the
  // ticked set.
  document.querySelectorAll("input[name=streams_mode]").forEach(function (el) {
    el.addEventListener("change", function () {
      if (el.value === "readable") boxes.forEach(function (c) { c.checked = c.dataset.readable === "true"; });
      update();
    });
  });
  boxes.forEach(function (c) {
    c.addEventListener("change", function () {
      document.getElementById("streams-ticked").checked = true;
      update();
    });
  });
  // The namespace placeholder follows the name (connection.DefaultNamespace).
  var name = document.getElementById("name"), ns = document.getElementById("namespace");
  var nsDefault = document.getElementById("namespace-default");
  function defaultNamespace(n) {
    var s = n.toLowerCase().replace(/[^a-z0-9]+/g, "_").replace(/^_+|_+$/g, "");
    if (!/^[a-z]/.test(s) || /^(pg_|sqlite_|river)/.test(s) || s === "public" || s === "information_schema") s = "c_" + s;
    return s.slice(0, 40).replace(/_+$/, "");
  }
  if (name && ns) {
    name.addEventListener("input", function () {
      var d = defaultNamespace(name.value);
      ns.placeholder = d;
      if (nsDefault) nsDefault.textContent = d;
    });
  }
  // Typing an interval or a cron expression chooses that kind.
  [["every", "schedule-every"], ["cron", "schedule-cron"]].forEach(function (p) {
    var input = document.getElementById(p[0]);
    if (input) input.addEventListener("input", function () { document.getElementById(p[1]).checked = true; });
  });
  update();
})();

// Shows the fields of the chosen direction of a new connection: a source
// connection's destination and streams, or a destination connection's
// query and load. Without it both show, and the server reads the ones
// the direction needs.
(function () {
  var src = document.getElementById("source-fields");
  var dst = document.getElementById("destination-fields");
  // Editing: the direction is fixed and the page shows its fields only.
  if (!src || !dst || !document.querySelector("input[name=direction]")) return;
  function update() {
    var d = document.querySelector("input[name=direction]:checked");
    var dest = d && d.value === "destination";
    src.hidden = dest;
    dst.hidden = !dest;
  }
  document.querySelectorAll("input[name=direction]").forEach(function (r) { r.addEventListener("change", update); });
  update();
})();
