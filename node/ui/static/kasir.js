// Kasir till app: the few behaviours htmx does not give.
// - JavaScript errors are collected in window.__kasirErrors (the browser tests read it).
// - The scan field keeps focus (a keyboard-wedge scanner types into it) unless a dialog
//   or another field is in use, and is emptied as soon as its text is sent, so the next
//   scan starts clean and never lands in a quantity field; a scan typed into another
//   field is taken out of it and sent as a scan.
// - Keys: F2 search/scan, F12 pay, Esc back to the cart, Enter on the struk: next sale.
// - A [data-print] button prints the page on paper.
(function () {
  "use strict";
  window.__kasirErrors = [];
  window.addEventListener("error", function (e) {
    window.__kasirErrors.push(String(e.message || e));
  });
  window.addEventListener("unhandledrejection", function (e) {
    window.__kasirErrors.push(String(e.reason || e));
  });

  function scanField() {
    return document.getElementById("scan");
  }
  function typingElsewhere() {
    var a = document.activeElement;
    if (!a || a === document.body) return false;
    if (a.id === "scan") return false;
    return a.tagName === "INPUT" || a.tagName === "SELECT" || a.tagName === "TEXTAREA";
  }
  function keepFocus() {
    var s = scanField();
    if (s && !typingElsewhere()) s.focus();
  }
  document.addEventListener("DOMContentLoaded", keepFocus);
  document.addEventListener("htmx:afterSettle", keepFocus);
  document.addEventListener("click", function () {
    setTimeout(keepFocus, 0);
  });
  // The request has taken the scanned text: clear the field for the next scan.
  document.addEventListener("htmx:configRequest", function (e) {
    var s = scanField();
    if (s && e.detail.elt && e.detail.elt.id === "scan-form") s.value = "";
  });
  // A scan that lands in another field (the cashier was in a line's discount when the
  // customer handed over the next item) is taken back out of it and sent as a scan:
  // a port of kasir_devices::barcode::WedgeDetector, its thresholds from the server
  // (data-wedge-min characters, each at most data-wedge-gap ms apart, then Enter).
  var burst = null;
  document.addEventListener(
    "keydown",
    function (e) {
      var form = document.getElementById("scan-form");
      var t = e.target;
      if (!form || !t || t.tagName !== "INPUT" || t.id === "scan" || t.type === "password") {
        burst = null;
        return;
      }
      var min = Number(form.getAttribute("data-wedge-min")) || 6;
      var gap = Number(form.getAttribute("data-wedge-gap")) || 30;
      var now = e.timeStamp;
      if (e.key === "Enter" && !e.repeat) {
        var scanned = burst && burst.el === t && burst.text.length >= min && now - burst.last <= gap;
        if (scanned) {
          e.preventDefault();
          e.stopPropagation();
          t.value = burst.before;
          t.blur();
          var s = scanField();
          s.value = burst.text;
          s.focus();
          htmx.trigger(form, "submit");
        }
        burst = null;
        return;
      }
      // Scanners press Shift for capitals: a modifier alone is not a keystroke.
      if (e.key === "Shift" || e.key === "CapsLock" || e.key === "NumLock") return;
      if (e.repeat || e.key.length !== 1 || e.ctrlKey || e.altKey || e.metaKey) {
        burst = null;
        return;
      }
      if (!burst || burst.el !== t || now - burst.last > gap) {
        burst = { el: t, text: "", before: t.value, last: now };
      }
      burst.text += e.key;
      burst.last = now;
    },
    true
  );
  // The PIN pad types into the PIN field.
  document.addEventListener("click", function (e) {
    var key = e.target.closest("[data-pin-key]");
    if (!key) return;
    var pin = document.getElementById("pin");
    if (!pin) return;
    var k = key.getAttribute("data-pin-key");
    if (k === "del") pin.value = pin.value.slice(0, -1);
    else if (pin.value.length < 12) pin.value += k;
  });
  // Reports print on paper from the browser (the print style shows the report alone).
  document.addEventListener("click", function (e) {
    if (e.target.closest("[data-print]")) window.print();
  });
  // Live state: one event stream per page; a burst of changes is one refresh.
  document.addEventListener("DOMContentLoaded", function () {
    var url = document.body.getAttribute("data-events");
    if (!url || !window.EventSource) return;
    var pending = null;
    var source = new EventSource(url);
    window.__kasirChanges = 0;
    source.addEventListener("change", function () {
      window.__kasirChanges += 1;
      if (pending) return;
      pending = setTimeout(function () {
        pending = null;
        document.body.dispatchEvent(new CustomEvent("kasir:change", { bubbles: true }));
      }, 100);
    });
    window.addEventListener("beforeunload", function () {
      source.close();
    });
  });
  document.addEventListener("keydown", function (e) {
    if (e.key === "F2") {
      e.preventDefault();
      var s = scanField();
      if (s) s.focus();
    } else if (e.key === "F12") {
      var pay = document.getElementById("pay");
      if (pay) {
        e.preventDefault();
        pay.click();
      }
    } else if (e.key === "Enter" && !typingElsewhere()) {
      // On the struk: Enter starts the next sale.
      var next = document.getElementById("new-sale");
      if (next && !scanField()) {
        e.preventDefault();
        next.click();
      }
    } else if (e.key === "Escape") {
      var back = document.getElementById("back");
      if (back) {
        e.preventDefault();
        back.click();
      }
    }
  });
})();
